"""A customer's message reduced to what conversations act on (flows, keywords, agents)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class InputKind(StrEnum):
    TEXT = "text"
    BUTTON = "button"  # an interactive reply button, or a template quick-reply button
    LIST = "list"  # a row of an interactive list
    MEDIA = "media"  # image, audio, video, document, sticker
    LOCATION = "location"
    REACTION = "reaction"  # an emoji on an earlier message (``reply_to``); none: removed
    EDIT = "edit"  # the customer edited an earlier message (``reply_to``)
    REVOKE = "revoke"  # the customer deleted an earlier message (``reply_to``)
    CALL_PERMISSION = "call_permission"  # an answer to a request to call them
    OTHER = "other"  # contacts, unsupported, and types Meta adds later


NOT_SAID_TO_THE_BOT = frozenset(
    {InputKind.REACTION, InputKind.EDIT, InputKind.REVOKE, InputKind.CALL_PERMISSION}
)
"""Kinds that act on something earlier rather than say something new: the bot neither
starts a flow for them nor takes them as the answer a flow waits for."""


class CustomerInput(BaseModel):
    """What the customer said.

    ``text`` is what they typed, or the title of the button or row they tapped, or a
    media caption. ``choice_id`` is the id of the tapped button or row, or a template
    quick-reply button's payload.

    >>> CustomerInput(kind=InputKind.BUTTON, text="Yes please", choice_id="consent_yes").choice_id
    'consent_yes'
    """

    model_config = ConfigDict(frozen=True)

    kind: InputKind
    text: str | None = None
    choice_id: str | None = None
    media_type: str | None = None
    media_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    reply_to: str | None = Field(default=None, description="wamid the customer replied to")

    @property
    def said_to_the_bot(self) -> bool:
        """Whether this is something the customer wrote for an answer (not a reaction,
        an edit, a deletion or a call-permission reply)."""
        return self.kind not in NOT_SAID_TO_THE_BOT

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
    OTHER = "other"  # reactions, contacts, unsupported, and types Meta adds later


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

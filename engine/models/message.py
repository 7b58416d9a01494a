"""Messages in both directions, their channel, and the order of delivery statuses."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Channel(StrEnum):
    """Which part of the product sent an outbound message; the opt-in rule depends on it."""

    COMPOSE = "compose"
    BROADCAST = "broadcast"
    SEQUENCE = "sequence"
    API = "api"
    BOT = "bot"


class MessageStatus(StrEnum):
    RECEIVED = "received"  # inbound
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"  # Meta's per-user marketing limit (131049): tried again later

    @property
    def is_final(self) -> bool:
        return self in (MessageStatus.FAILED, MessageStatus.SKIPPED)

    def may_follow(self, current: MessageStatus) -> bool:
        """Whether a status update may replace ``current``.

        Statuses arrive out of order (Meta does not guarantee order), so a message
        never moves backwards: ``read`` followed by a late ``delivered`` stays ``read``.
        ``failed`` wins over anything not yet delivered.

        >>> MessageStatus.DELIVERED.may_follow(MessageStatus.READ)
        False
        >>> MessageStatus.FAILED.may_follow(MessageStatus.SENT)
        True
        """
        if current.is_final or current == self:
            return False
        if self.is_final:
            return _PROGRESS[current] < _PROGRESS[MessageStatus.DELIVERED]
        return _PROGRESS[self] > _PROGRESS[current]


_PROGRESS = {
    MessageStatus.RECEIVED: 0,
    MessageStatus.QUEUED: 0,
    MessageStatus.DEFERRED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    MessageStatus.PLAYED: 5,
    MessageStatus.FAILED: 9,
    MessageStatus.SKIPPED: 9,
}


class Failure(BaseModel):
    """Why a message failed or was skipped: a stable code and a sentence for people."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(examples=["marketing_opt_out", "131026"])
    reason: str


class StatusChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: MessageStatus
    at: datetime
    failure: Failure | None = None
    details: dict[str, Any] | None = Field(
        default=None, description="what the status notification carried (pricing, errors)"
    )


class TemplateRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    language: str
    params: tuple[str, ...] = ()


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    direction: Direction
    channel: Channel | None = Field(default=None, description="outbound only")
    contact_id: int
    contact: str = Field(description="the contact's address: wa_id, else user_id")
    kind: str = Field(description="text, template, interactive, image, ...")
    text: str | None = None
    template: TemplateRef | None = None
    payload: dict[str, Any] | None = Field(
        default=None, description="the wire body: Meta's inbound message or our send body"
    )
    status: MessageStatus
    failure: Failure | None = None
    history: tuple[StatusChange, ...] = ()
    wamid: str | None = None
    held_until: datetime | None = Field(
        default=None,
        description="outbound MARKETING held for the contact's quiet hours: when it may go",
    )
    created_at: datetime
    updated_at: datetime

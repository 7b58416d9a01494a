"""Messages in both directions and their status history."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.models.message import Channel, Failure, Message, MessageStatus
from engine.send_rules import ContentKind, Options


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """What :func:`engine.send_rules.decide` was asked about an outbound message when it was
    queued (besides its channel and the contact's opt-in), kept with the message so the
    sender asks again, with the contact's opt-in of that moment, just before sending."""

    kind: ContentKind
    options: Options


@dataclass(frozen=True, slots=True)
class MessageFilter:
    channel: Channel | None = None
    status: MessageStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    contact_id: int | None = None
    limit: int = 1000
    after_id: str | None = None


class MessageRepo(ABC):
    @abstractmethod
    async def insert(self, message: Message, *, policy: PolicyInputs | None = None) -> bool:
        """Store a new message; False (and no change) when its wamid is already stored.
        ``policy``: for an outbound message, what the send rules were asked."""

    @abstractmethod
    async def get(self, message_id: str) -> Message | None: ...

    @abstractmethod
    async def get_by_wamid(self, wamid: str) -> Message | None: ...

    @abstractmethod
    async def change_status(
        self,
        message_id: str,
        status: MessageStatus,
        *,
        at: datetime,
        failure: Failure | None = None,
        details: dict[str, Any] | None = None,
        wamid: str | None = None,
    ) -> bool:
        """Record a status in the history; move the message to it unless that would go
        backwards (see :meth:`MessageStatus.may_follow`). True when the status moved."""

    @abstractmethod
    async def find(self, where: MessageFilter) -> list[Message]:
        """Messages matching ``where``, oldest first."""

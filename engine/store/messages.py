"""Messages in both directions and their status history."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.models.message import Channel, Failure, Message, MessageStatus, StatusChange
from engine.send_rules import ContentKind, Options


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """What :func:`engine.send_rules.decide` was asked about an outbound message when it was
    queued (besides its channel and the contact's opt-in), kept with the message so the
    sender asks again, with the contact's opt-in of that moment, just before sending."""

    kind: ContentKind
    options: Options
    """Their ``quiet_hours`` resolved at enqueue (the setting, or the broadcast's own)."""


@dataclass(frozen=True, slots=True)
class Pricing:
    """What Meta says it charges for a message (the ``pricing`` of its statuses)."""

    billable: bool | None = None
    pricing_model: str | None = None
    type: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class BillingLine:
    """Messages of one pricing category: how many Meta priced, and how many of them it
    said were billable."""

    category: str
    messages: int
    billable: int


@dataclass(frozen=True, slots=True)
class MessageFilter:
    channel: Channel | None = None
    status: MessageStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    contact_id: int | None = None
    failure_code: str | None = None
    limit: int = 1000
    after_id: str | None = None
    before_id: str | None = None
    """Keyset paging backwards: the latest ``limit`` messages before this id (still
    returned oldest first)."""


class MessageRepo(ABC):
    @abstractmethod
    async def insert(
        self,
        message: Message,
        *,
        policy: PolicyInputs | None = None,
        phone_number_id: str | None = None,
    ) -> bool:
        """Store a new message; False (and no change) when its wamid is already stored.
        ``policy``: for an outbound message, what the send rules were asked;
        ``phone_number_id``: for an inbound one, the registered business number it came
        to (None: one not registered here). Stored with the row rather than set after
        it: on PostgreSQL a write back to the newest rows makes concurrent ingests
        conflict."""

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
    async def marketing_sent_count(self, contact_id: int, *, since: datetime) -> int:
        """How many MARKETING templates went to the contact (on any channel) since
        ``since``, counting those being sent: what the frequency cap counts."""

    @abstractmethod
    async def find(self, where: MessageFilter) -> list[Message]:
        """Messages matching ``where``, oldest first."""

    @abstractmethod
    async def set_pricing(self, message_id: str, pricing: Pricing) -> None:
        """Keep the pricing of the message's latest status that carried one."""

    @abstractmethod
    async def pricing(self, message_id: str) -> Pricing | None: ...

    @abstractmethod
    async def billing(
        self, where: MessageFilter | None = None, *, broadcast_id: str | None = None
    ) -> list[BillingLine]:
        """Outbound messages Meta priced, by pricing category: those matching ``where``,
        or those of one broadcast."""


_DELIVERY = frozenset(
    (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PLAYED)
)


def add_to_history(history: list[StatusChange], change: StatusChange) -> None:
    """Append ``change``, or fold it into the last entry when that is the same delivery
    status: the sender records ``sent`` when Meta answers, and Meta's own ``sent`` right
    after says the same thing again. What Meta said (its time, its details) wins; the
    sender's details are kept beside them. A status that comes back later (a late
    ``delivered`` after ``read``) stays an entry of its own."""
    last = history[-1] if history else None
    if last is None or change.status not in _DELIVERY or last.status is not change.status:
        history.append(change)
        return
    details = {**(last.details or {}), **(change.details or {})} or None
    history[-1] = change.model_copy(
        update={"failure": change.failure or last.failure, "details": details}
    )

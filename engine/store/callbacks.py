"""Integration callbacks: each status change of a message that has a callback URL.

Deliveries are queued by the database in the same transaction as the status change
(a trigger on ``messages``), so no path that changes a status can forget one. A
background dispatcher claims due deliveries with a lease, posts them, and records the
outcome: delivered, retried later with backoff, or abandoned after the last try.
Deliveries of one message go one at a time, in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.models.message import Failure, MessageStatus


@dataclass(frozen=True, slots=True)
class CallbackDelivery:
    id: int
    message_id: str
    url: str
    to: str
    status: MessageStatus
    at: datetime
    failure: Failure | None
    wamid: str | None
    attempts: int
    """Including the one that starts now."""


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    delivery_id: int
    delivered: bool
    error: str | None = None
    retry_at: datetime | None = None
    """When to try again; None with ``delivered`` False abandons the delivery."""


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    id: int
    status: MessageStatus
    state: str
    attempts: int
    last_error: str | None


class CallbackRepo(ABC):
    @abstractmethod
    async def claim(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[CallbackDelivery]:
        """Lease up to ``limit`` due deliveries, the oldest pending one of each message."""

    @abstractmethod
    async def record(self, outcomes: Sequence[CallbackOutcome], *, now: datetime) -> None: ...

    @abstractmethod
    async def for_message(self, message_id: str) -> list[CallbackRecord]:
        """The deliveries of one message, oldest first."""

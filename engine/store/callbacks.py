"""Integration callbacks: each status change of a message that has a callback URL.

Deliveries are queued by the database in the same transaction as the status change
(a trigger on ``messages``), so no path that changes a status can forget one. A
background dispatcher claims due deliveries with a lease (an owner and a deadline), posts
them, and records the outcome: delivered, retried later with backoff, or abandoned after
the last try. Deliveries of one message go one at a time, in order.

An outcome is recorded only while the lease is still its owner's: a worker whose lease
lapsed during a slow post, and was taken over by another worker, records nothing (the
one that holds the lease now decides what the delivery's state is).
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
        self, owner: str, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[CallbackDelivery]:
        """Lease up to ``limit`` due deliveries to ``owner``, the oldest pending one of
        each message."""

    @abstractmethod
    async def record(
        self, owner: str, outcomes: Sequence[CallbackOutcome], *, now: datetime
    ) -> None:
        """Record the outcomes of deliveries still leased to ``owner``; the others are
        left as they are."""

    @abstractmethod
    async def for_message(self, message_id: str) -> list[CallbackRecord]:
        """The deliveries of one message, oldest first."""

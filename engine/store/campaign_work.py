"""Due work of campaigns: planning a broadcast batch by batch, and sequence timers.

Claimed like the outbox (:mod:`engine.store.outbox`): a worker *claims* due items in one
committed write that gives them a lease (an owner and a deadline), then handles each in
a transaction of its own that first checks it still holds the lease (:meth:`held`).
Several workers never handle one item at the same time, and an item whose worker
stopped comes back when its lease expires. Handling an item ends by rescheduling it
(:meth:`schedule` clears the lease) or removing it (:meth:`cancel`).

There is one item per broadcast being planned and one timer per active enrolment
(``kind`` + ``subject`` are unique). A sequence timer carries the sequence ``version``
it was set under, so an edit of the sequence makes it stale.

The SQLite store claims with ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING``
through its single writer; a PostgreSQL store adds ``FOR UPDATE SKIP LOCKED`` to the
sub-select.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class WorkKind(StrEnum):
    BROADCAST = "broadcast"  # plan the next batch of a broadcast's audience
    SEQUENCE_STEP = "sequence_step"  # run the next step of an enrolment


@dataclass(frozen=True, slots=True)
class WorkItem:
    id: int
    kind: WorkKind
    subject: str
    """The broadcast id, or the enrolment id."""
    due_at: datetime
    step: int | None
    version: int | None
    attempts: int
    """Including the one that starts now."""


class CampaignWorkRepo(ABC):
    @abstractmethod
    async def schedule(
        self,
        kind: WorkKind,
        subject: str,
        due_at: datetime,
        *,
        step: int | None = None,
        version: int | None = None,
    ) -> None:
        """Make ``subject``'s item due at ``due_at`` (creating it, or replacing its time,
        step and version, and releasing its lease)."""

    @abstractmethod
    async def claim(
        self, owner: str, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[WorkItem]:
        """Lease up to ``limit`` items that are due and not leased (or whose lease
        expired) to ``owner``, earliest first."""

    @abstractmethod
    async def held(
        self, owner: str, item_id: int, *, lease_until: datetime | None = None
    ) -> WorkItem | None:
        """The item if ``owner`` still holds it (else None: another worker took it over);
        with ``lease_until`` the lease is extended."""

    @abstractmethod
    async def retry_later(self, owner: str, item_id: int, due_at: datetime, error: str) -> None:
        """Handling failed: release the item, due again at ``due_at``."""

    @abstractmethod
    async def cancel(self, kind: WorkKind, subject: str) -> None:
        """Remove ``subject``'s item, leased or not."""

    @abstractmethod
    async def get(self, kind: WorkKind, subject: str) -> WorkItem | None: ...

    @abstractmethod
    async def next_due(self) -> datetime | None:
        """When the earliest item is due."""

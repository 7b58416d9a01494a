"""Bot flow sessions between customer messages, their scheduled wakeups, and handoffs.

The store keeps a session as JSON text (its shape belongs to :mod:`engine.flows`)
next to the few fields queries need. A contact has at most one session.

Wakeups (an ``ask`` timeout, or the deadline of an ``http`` call) are claimed by
*deleting* them in the transaction that applies them: only one transaction can
delete a row, so two workers never fire one wakeup twice, and a worker that fails
rolls back and leaves the wakeup due. PostgreSQL: ``DELETE ... WHERE id IN (SELECT
id ... WHERE due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING ...``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class WakeupKind(StrEnum):
    TIMEOUT = "timeout"  # an ask's timeout
    HTTP = "http"  # an http call's answer never came (e.g. the server stopped)


@dataclass(frozen=True, slots=True)
class StoredSession:
    contact_id: int
    flow_id: str
    waiting_for: str
    """``reply`` or ``http``."""
    wait_seq: int
    state: str
    """The session as JSON."""
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Wakeup:
    id: int
    contact_id: int
    kind: WakeupKind
    wait_seq: int
    """The session's wait it belongs to; a later wait makes it stale."""
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Handoff:
    contact_id: int
    flow_id: str
    queue: str | None
    note: str | None
    at: datetime


class FlowSessionRepo(ABC):
    @abstractmethod
    async def get(self, contact_id: int) -> StoredSession | None: ...

    @abstractmethod
    async def put(
        self,
        contact_id: int,
        *,
        flow_id: str,
        waiting_for: str,
        wait_seq: int,
        state: str,
        at: datetime,
    ) -> None:
        """Create or replace the contact's session."""

    @abstractmethod
    async def delete(self, contact_id: int) -> None:
        """Forget the contact's session and its wakeups."""

    @abstractmethod
    async def schedule(
        self, contact_id: int, kind: WakeupKind, wait_seq: int, due_at: datetime
    ) -> None: ...

    @abstractmethod
    async def cancel_wakeups(self, contact_id: int) -> None: ...

    @abstractmethod
    async def claim_due(self, now: datetime, limit: int) -> list[Wakeup]:
        """Remove and return up to ``limit`` wakeups due at ``now``, earliest first.

        The caller applies them in the same transaction (see the module docstring)."""

    @abstractmethod
    async def next_due(self) -> datetime | None:
        """When the earliest wakeup is due."""

    @abstractmethod
    async def record_handoff(
        self, contact_id: int, flow_id: str, queue: str | None, note: str | None, at: datetime
    ) -> None: ...

    @abstractmethod
    async def last_handoff(self, contact_id: int) -> Handoff | None:
        """The latest handoff of the contact to the agents' queue."""

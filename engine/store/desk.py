"""The agents' desk: who holds a conversation, what agents wrote, what they have read.

Ownership itself is the ``conversations`` row (:mod:`engine.store.conversations`),
which the inbound side reads to decide whether the bot answers; this repository
changes it only through :meth:`DeskRepo.claim`, the one conditional update that keeps
two agents from owning one conversation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.models.agent import ComposeRecord, ConversationEvent, ConversationSummary
from engine.models.conversation import Conversation, Owner


@dataclass(frozen=True, slots=True)
class SummaryFilter:
    owner: Owner | None = None
    agent: str | None = None
    """Only conversations this agent owns ("mine")."""
    waiting: bool = False
    """Only conversations waiting in the agents' queue (owner agent, nobody assigned)."""
    limit: int = 100
    reader: str | None = None
    """Count unread messages for this agent (what they have read); None: since anyone
    last read the conversation."""
    contact_id: int | None = None
    """Only this conversation."""


@dataclass(frozen=True, slots=True)
class DeskChange:
    """One entry of the desk's change feed (see :meth:`DeskRepo.changes_after`)."""

    seq: int
    contact_id: int
    message_id: str | None
    """A message added or moved to a new status."""
    added: bool
    """The message was added (else it moved to a new status)."""
    agent: str | None
    """An agent read the conversation (only that agent's pages care)."""
    entry_id: int | None = None
    """A desk entry added (a private note, an assignment, resolved or reopened)."""


class DeskRepo(ABC):
    @abstractmethod
    async def claim(self, contact_id: int, agent: str) -> tuple[Conversation, bool]:
        """Make ``agent`` the owner when the bot owns the conversation, it waits in the
        queue, or ``agent`` already owns it. Returns the conversation as it is now and
        whether this call changed its owner; when another agent owns it, nothing changes
        and the conversation is returned with that owner (PostgreSQL: one conditional
        upsert, no read-then-write)."""

    @abstractmethod
    async def record_event(self, contact_id: int, event: ConversationEvent) -> None: ...

    @abstractmethod
    async def events(self, contact_id: int, *, limit: int = 100) -> list[ConversationEvent]:
        """The latest ``limit`` events, oldest first."""

    @abstractmethod
    async def record_compose(self, record: ComposeRecord) -> None: ...

    @abstractmethod
    async def compose_records(self, message_ids: Sequence[str]) -> dict[str, ComposeRecord]: ...

    @abstractmethod
    async def mark_read(self, contact_id: int, *, agent: str, at: datetime) -> None:
        """``agent`` has seen every message of the conversation stored so far (their own
        read state, and when anyone last read it)."""

    @abstractmethod
    async def compose_record_by_key(self, agent: str, key: str) -> ComposeRecord | None:
        """The message ``agent`` composed with idempotency ``key``, if any."""

    @abstractmethod
    async def changes_after(self, seq: int, *, limit: int) -> list[DeskChange]:
        """The desk's changes after ``seq``, oldest first (committed ones only)."""

    @abstractmethod
    async def changes_among(self, seqs: Sequence[int]) -> list[DeskChange]:
        """Those of ``seqs`` that are committed now (gaps a slower writer left)."""

    @abstractmethod
    async def last_change(self) -> int:
        """The newest change's number (0 when there is none)."""

    @abstractmethod
    async def prune_changes(self, before: datetime) -> int:
        """Forget changes older than ``before``; how many were forgotten."""

    @abstractmethod
    async def summaries(self, where: SummaryFilter) -> list[ConversationSummary]:
        """Conversations with their unread counts, most recently active first (a
        customer's message or a change of hands)."""

    @abstractmethod
    async def recent_cursor(self, contact_id: int, *, keep: int) -> str | None:
        """The message id to page after (``MessageFilter.after_id``) so that only the
        contact's latest ``keep`` messages are read; None when there are no more."""

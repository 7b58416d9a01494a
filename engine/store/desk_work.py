"""The agents' desk beyond ownership: assignment and resolution, the private timeline
(notes and assignments), saved replies, and search over contacts and messages."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from engine.models.desk_work import (
    Assignment,
    ContactHit,
    DeskEntry,
    MessageHit,
    SavedReply,
)


class AssignmentRepo(ABC):
    @abstractmethod
    async def assign(self, contact_id: int, agent: str, *, at: datetime) -> None:
        """Give the conversation to ``agent`` (owner agent) and open it if resolved."""

    @abstractmethod
    async def resolve(self, contact_id: int, *, at: datetime) -> None: ...

    @abstractmethod
    async def reopen(self, contact_id: int) -> None: ...

    @abstractmethod
    async def get(self, contact_id: int) -> Assignment:
        """Resolved only while no customer message came after the resolution."""

    @abstractmethod
    async def workload(self) -> dict[str, int]:
        """Open (unresolved) conversations each agent has, by email; agents with none
        are absent."""


class DeskLogRepo(ABC):
    @abstractmethod
    async def add(self, contact_id: int, entry: DeskEntry) -> DeskEntry:
        """The entry as stored (with its id)."""

    @abstractmethod
    async def entries(self, contact_id: int, *, limit: int = 500) -> list[DeskEntry]:
        """The latest ``limit`` entries, oldest first."""

    @abstractmethod
    async def entries_by_id(self, ids: Sequence[int]) -> dict[int, DeskEntry]:
        """Those of ``ids`` that exist, by id."""


class SavedReplyRepo(ABC):
    @abstractmethod
    async def put(self, reply: SavedReply) -> None:
        """Add the reply, or replace the one with its shortcut."""

    @abstractmethod
    async def delete(self, shortcut: str) -> bool: ...

    @abstractmethod
    async def all(self) -> list[SavedReply]:
        """By shortcut."""


class SearchRepo(ABC):
    @abstractmethod
    async def contacts(self, text: str, *, limit: int = 20) -> list[ContactHit]:
        """Contacts whose name, number, user id or a tag contains ``text``, ignoring
        case; the most recently changed first."""

    @abstractmethod
    async def messages(self, text: str, *, limit: int = 20) -> list[MessageHit]:
        """Messages whose text contains ``text``, ignoring case; newest first."""


def like_pattern(text: str) -> str:
    """``text`` anywhere, for LIKE/ILIKE with ``ESCAPE '\\'``.

    >>> like_pattern("50%_off")
    '%50\\\\%\\\\_off%'
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def number_of(text: str) -> str | None:
    """The digits of a phone number as people type it ("+1 650-555"), else None.

    >>> number_of("+1 (650) 555-12")
    '165055512'
    >>> number_of("Ann") is None
    True
    """
    digits = "".join(c for c in text if c not in " +-().")
    return digits if digits.isdigit() else None

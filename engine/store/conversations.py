"""Who answers a contact, and when they last wrote (the 24-hour window)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from engine.models.conversation import Conversation, Owner


class ConversationRepo(ABC):
    @abstractmethod
    async def get(self, contact_id: int) -> Conversation:
        """The contact's conversation; a bot-owned one with no history if none is stored."""

    @abstractmethod
    async def record_inbound(self, contact_id: int, at: datetime) -> Conversation:
        """Refresh the customer-service window after a message from the contact."""

    @abstractmethod
    async def set_owner(self, contact_id: int, owner: Owner, agent: str | None) -> Conversation: ...

    @abstractmethod
    async def list(self, *, owner: Owner | None = None, limit: int = 100) -> list[Conversation]:
        """Most recently active first."""

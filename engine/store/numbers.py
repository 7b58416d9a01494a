"""The business numbers of the install, and each contact's window with each of them.

A number is registered once (``register`` returns None the second time); the first
registered is the default, the one a send that names none goes out from. Meta's health
updates name a number by its display number (``by_display``). The 24-hour window is kept
per contact and number (``record_inbound``, ``last_inbound``); the conversation keeps the
number the customer last wrote to, which the bot and the agents answer from.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from engine.models.number import BusinessNumber, HealthUpdate

BUSINESS_INITIATED = ("api", "broadcast", "sequence")
"""The channels that start a conversation a number's daily limit counts (the bot and
the agents answer a customer who wrote)."""


@dataclass(frozen=True, slots=True)
class NewNumber:
    phone_number_id: str
    display_phone_number: str
    rate_limit: int | None = None


def display_digits(display_phone_number: str) -> str:
    """The digits of a display number, as Meta's webhooks write it (``15550783881``).

    >>> display_digits("+1 555-078-3881")
    '15550783881'
    """
    return re.sub(r"\D", "", display_phone_number)


class NumberRepo(ABC):
    @abstractmethod
    async def register(self, number: NewNumber, *, at: datetime) -> BusinessNumber | None:
        """Register a number; None when it is registered already (nothing changes)."""

    @abstractmethod
    async def get(self, phone_number_id: str) -> BusinessNumber | None: ...

    @abstractmethod
    async def list(self) -> list[BusinessNumber]:
        """In the order they were registered: the first is the default."""

    @abstractmethod
    async def default(self) -> str | None:
        """The first registered number (None when none is)."""

    @abstractmethod
    async def by_display(self, display_phone_number: str) -> BusinessNumber | None: ...

    @abstractmethod
    async def update_health(
        self, phone_number_id: str, update: HealthUpdate, *, at: datetime
    ) -> BusinessNumber | None: ...

    @abstractmethod
    async def record_inbound(self, contact_id: int, phone_number_id: str, at: datetime) -> None:
        """The contact wrote to this registered number at ``at``: open that number's
        window with them and make it the one the conversation answers from."""

    @abstractmethod
    async def last_inbound(self, contact_id: int, phone_number_id: str) -> datetime | None:
        """When the contact last wrote to that number (None: never)."""

    @abstractmethod
    async def last_written_to(self, contact_id: int) -> str | None:
        """The number the contact last wrote to (None: never, or before numbers were kept)."""

    @abstractmethod
    async def of_message(self, message_id: str) -> str | None:
        """The number a message was sent from or came to."""

    @abstractmethod
    async def customers_reached(self, phone_number_id: str, *, since: datetime) -> int:
        """Unique contacts the number started conversations with since then (messages
        of the business-initiated channels not failed or skipped); a row that names no
        number counts for the default number."""

    @abstractmethod
    async def oldest_reach(self, phone_number_id: str, *, since: datetime) -> datetime | None:
        """When the earliest of those sends was made (the rolling 24 hours free a slot
        24 hours after it)."""

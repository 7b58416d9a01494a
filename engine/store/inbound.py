"""The inbound side's own records: hand-offs of stored messages, and early statuses.

A *hand-off* is the promise that a stored inbound message will reach whoever answers
the conversation. It is written in the same transaction as the message and marked
handled only once the handler has returned, so a crash between the two leaves the
message pending, not lost.

An *unmatched status* is a delivery status whose wamid no outbound message carries
yet (Meta can report ``sent`` before the sender has recorded the wamid it got back).
It is kept until :meth:`InboundRepo.take_unmatched_statuses` hands it over.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.models.contact import Contact
from engine.models.conversation import Conversation
from engine.models.customer_input import CustomerInput
from engine.models.message import Failure, Message, MessageStatus


class Outcome(StrEnum):
    """How a hand-off ended."""

    BOT = "bot"  # the bot handler returned
    AGENT = "agent"  # an agent owns the conversation: the bot was not called
    NO_HANDLER = "no_handler"  # no bot handler is configured
    CONSUMED = "consumed"  # a stop word or button: consent changed, nothing to answer
    SYSTEM = "system"  # a notice from WhatsApp (number changed, ...), not the customer
    GROUP = "group"  # written in a group: kept, never answered one-to-one
    UNKNOWN_NUMBER = "unknown_number"  # to a business number not registered: never answered
    FAILED = "failed"  # the handler kept failing; given up after the last attempt


@dataclass(frozen=True, slots=True)
class Handoff:
    message_id: str
    contact_id: int
    new_contact: bool
    attempts: int = 0
    outcome: Outcome | None = None
    handled_at: datetime | None = None
    previous_owner: str | None = None
    """Set by a claim: the dispatcher that handed the contact's previous message over
    (None: none did, it needed no handler)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A pending hand-off with what the handler is given, read together."""

    handoff: Handoff
    message: Message
    contact: Contact
    conversation: Conversation
    input: CustomerInput


@dataclass(frozen=True, slots=True)
class UnmatchedStatus:
    wamid: str
    status: MessageStatus
    at: datetime
    received_at: datetime
    failure: Failure | None = None
    details: dict[str, Any] | None = None
    consent_applied: bool = False


class InboundRepo(ABC):
    @abstractmethod
    async def add_handoff(
        self,
        message_id: str,
        contact_id: int,
        said: CustomerInput,
        *,
        new_contact: bool,
        handled: tuple[Outcome, datetime] | None = None,
    ) -> None:
        """Record the hand-off of a just-stored message and what the customer said in
        it; ``handled`` when it needs no handler."""

    @abstractmethod
    async def get_handoff(self, message_id: str) -> Handoff | None: ...

    @abstractmethod
    async def deliveries(self, *, exclude: Collection[int], limit: int) -> list[Delivery]:
        """Pending hand-offs in the order their messages were stored, skipping the
        contacts in ``exclude`` (those being served)."""

    @abstractmethod
    async def pending(self, *, exclude: Collection[int], limit: int) -> list[Handoff]:
        """Like :meth:`deliveries`, the hand-offs alone: for a caller that holds the
        rest of most of them already."""

    @abstractmethod
    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        exclude: Collection[int],
        limit: int,
    ) -> list[Handoff]:
        """Lease to ``owner`` the head pending hand-off of up to ``limit`` contacts, in
        the order they were stored: a contact's head whose lease is ``owner``'s already,
        is free, or lapsed; never one of a contact another owner is handing over (nor of
        the contacts in ``exclude``). Handing a contact's messages over one at a time,
        head first, keeps them in order whichever process stored them."""

    @abstractmethod
    async def release(self, owner: str, message_ids: Collection[str]) -> None:
        """Give back ``owner``'s leases of these hand-offs, unhandled."""

    @abstractmethod
    async def deliveries_of(self, message_ids: Collection[str]) -> list[Delivery]:
        """The pending hand-offs of these messages, in the order they were stored."""

    @abstractmethod
    async def count_waiting(self) -> int: ...

    @abstractmethod
    async def count_by_outcome(self) -> dict[Outcome | None, int]:
        """How many hand-offs ended each way; ``None`` counts those still waiting."""

    @abstractmethod
    async def mark_handled(self, handled: Sequence[tuple[str, Outcome]], at: datetime) -> None:
        """Close the hand-offs of these messages, each with its outcome."""

    @abstractmethod
    async def count_attempt(self, message_id: str) -> int:
        """Note a failed attempt to hand the message over; the attempts so far."""

    @abstractmethod
    async def keep_unmatched_status(self, status: UnmatchedStatus) -> None: ...

    @abstractmethod
    async def take_unmatched_statuses(self, *wamids: str) -> list[UnmatchedStatus]:
        """Remove and return the statuses kept for ``wamids``, in the order they came."""

    @abstractmethod
    async def prune_unmatched_statuses(self, received_before: datetime) -> int:
        """Forget statuses no message claimed (sent by another system); how many."""

"""Opt-out intents read in customers' own words: the question asked about one (or, while
an agent owns the conversation, the suggestion shown to the agent), one per contact, the
latest, kept with its answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class IntentMode(StrEnum):
    ASKED = "asked"  # the customer was asked with the two reply buttons
    SUGGESTED = "suggested"  # an agent owns the conversation: the agent is shown it


class IntentAnswer(StrEnum):
    STOP = "stop"  # the customer confirmed: opted out
    KEEP = "keep"  # the customer keeps marketing: nothing changed
    AGENT = "agent"  # an agent acted on the suggestion


@dataclass(frozen=True, slots=True)
class RaisedIntent:
    contact_id: int
    message_id: str
    """Our id of the customer's message."""
    wamid: str | None
    text: str
    """The customer's words, kept as the evidence of a change they confirm."""
    language: str
    evidence: str
    """What the detector read in them."""
    mode: IntentMode
    raised_at: datetime
    answer: IntentAnswer | None = None
    answered_at: datetime | None = None


class ConsentIntentRepo(ABC):
    @abstractmethod
    async def get(self, contact_id: int) -> RaisedIntent | None:
        """The latest intent raised for the contact."""

    @abstractmethod
    async def put(self, intent: RaisedIntent) -> None:
        """Keep ``intent`` as the contact's latest, in place of any before it."""

    @abstractmethod
    async def answer(self, contact_id: int, answer: IntentAnswer, at: datetime) -> None:
        """Record the answer to the contact's latest intent (nothing if there is none)."""

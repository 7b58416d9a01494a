"""The suggestion an agent sees when a customer, while the agent owns the conversation,
wrote words that read as "stop sending me marketing": the words, and an "Opt out" that
goes through the agent's opt-in switch (``POST /console/api/contacts/{contact}/opt-in``,
recorded as the agent's change, with the customer's words in the note)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.models.contact import ConsentEvent, Contact
from engine.store import Tx
from engine.store.consent_intents import IntentMode, RaisedIntent


@dataclass(frozen=True, slots=True)
class Suggestion:
    intent: RaisedIntent

    @property
    def note(self) -> str:
        """The note the opt-out is recorded with in the consent ledger."""
        return (
            f"customer wrote {self.intent.text!r} ({self.intent.wamid}); "
            "opted out from the console's suggestion"
        )


async def load_suggestion(
    tx: Tx, contact: Contact, consent: list[ConsentEvent]
) -> Suggestion | None:
    """The suggestion to show, while it stands: none once the contact opted out, or once
    their opt-in was changed in any way since the words were read."""
    if not contact.marketing_opt_in:
        return None
    intent = await tx.consent_intents.get(contact.id)
    if intent is None or intent.mode is not IntentMode.SUGGESTED or intent.answer is not None:
        return None
    if consent and consent[-1].at > intent.raised_at:
        return None
    return Suggestion(intent)

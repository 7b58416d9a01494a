"""Opt-out intent in free text: asked about, never applied silently.

A text that a detector (:mod:`engine.inbound.intent`) reads as "stop sending me
marketing", from a contact who is opted in:

- while the bot owns the conversation, the customer is asked with two reply buttons,
  ``CONSENT_INTENT_STOP`` and ``CONSENT_INTENT_KEEP``, in the language of their words,
  at most once per ``CONSENT_INTENT_ASK_AGAIN_DAYS``; the message is consumed (the
  question is its answer). Tapping STOP opts the contact out (source ``intent``), their
  words and the button kept in the ledger's note, and sends the stop confirmation; KEEP
  changes nothing;
- while an agent owns it, nothing is sent: the agent's conversation view shows the
  suggestion, with an "opt out" that goes through the agent's opt-in switch.

Reading the texts happens before the store job (:func:`read_intents`), so that a slow
detector never holds the store's writer and a retried job reads nothing again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from engine.inbound.consent import CUSTOMER, apply_customer_signal
from engine.inbound.consent_rules import ConsentRules, Signal
from engine.inbound.intent import Detector, Intent
from engine.inbound.intent.question import INTENT_KEEP, INTENT_STOP, question
from engine.models.contact import ConsentSource, Contact
from engine.models.conversation import Conversation, Owner
from engine.models.message import Channel, Message
from engine.outbound.enqueue import OutboundRequest, Refused, enqueue
from engine.store import Tx
from engine.store.consent_intents import IntentAnswer, IntentMode, RaisedIntent
from engine.whatsapp.webhook import Notification

BUTTONS = frozenset({INTENT_STOP, INTENT_KEEP})


@dataclass(frozen=True, slots=True)
class IntentSettings:
    detector: Detector | None = None
    """None: free text is never read for an intent (``CONSENT_INTENT_DETECTOR=off``)."""
    ask_again_after: timedelta = timedelta(days=30)


class Raised(StrEnum):
    ASKED = "asked"
    SUGGESTED = "suggested"
    NOTHING = "nothing"


async def read_intents(notification: Notification, detector: Detector | None) -> dict[str, Intent]:
    """The intents read in the notification's one-to-one text messages, by wamid."""
    if detector is None:
        return {}
    texts = {
        message.id: message.text.body
        for value in notification.values()
        for message in value.messages
        if message.type == "text"
        and message.text
        and message.text.body
        and message.group_id is None
    }
    if not texts:
        return {}

    def read() -> dict[str, Intent]:
        found = {wamid: detector.detect(text) for wamid, text in texts.items()}
        return {wamid: intent for wamid, intent in found.items() if intent is not None}

    return await asyncio.to_thread(read) if detector.blocking else read()


async def raise_intent(
    tx: Tx,
    contact: Contact,
    conversation: Conversation,
    message: Message,
    intent: Intent,
    *,
    settings: IntentSettings,
    now: datetime,
) -> Raised:
    if not contact.marketing_opt_in:
        return Raised.NOTHING  # nothing to stop: the words are the bot's or the agent's
    raised = RaisedIntent(
        contact_id=contact.id,
        message_id=message.id,
        wamid=message.wamid,
        text=message.text or "",
        language=intent.language,
        evidence=intent.evidence,
        mode=IntentMode.ASKED,
        raised_at=now,
    )
    if conversation.owner is Owner.AGENT:
        await tx.consent_intents.put(replace(raised, mode=IntentMode.SUGGESTED))
        return Raised.SUGGESTED
    last = await tx.consent_intents.get(contact.id)
    if (
        last is not None
        and last.mode is IntentMode.ASKED
        and now - last.raised_at < settings.ask_again_after
    ):
        return Raised.NOTHING  # asked lately: the bot answers the message as any other
    try:
        await enqueue(tx, OutboundRequest(contact, Channel.BOT, question(intent.language)), now=now)
    except Refused:
        return Raised.NOTHING  # delivered so late that the window has closed
    await tx.consent_intents.put(raised)
    return Raised.ASKED


async def answer_intent(
    tx: Tx,
    contact: Contact,
    button: str,
    wamid: str,
    *,
    rules: ConsentRules,
    now: datetime,
) -> None:
    """The customer tapped one of the question's buttons (``button`` in :data:`BUTTONS`)."""
    if button == INTENT_KEEP:
        await tx.consent_intents.answer(contact.id, IntentAnswer.KEEP, now)
        return
    raised = await tx.consent_intents.get(contact.id)
    words = (
        f"after writing {raised.text!r} ({raised.wamid}; read as {raised.evidence!r})"
        if raised is not None
        else "(the words asked about are not kept)"
    )
    await tx.consent_intents.answer(contact.id, IntentAnswer.STOP, now)
    if not contact.marketing_opt_in:
        return  # a second tap: the ledger already says so, and the customer was answered
    await apply_customer_signal(
        tx,
        contact,
        Signal.STOP,
        ConsentSource.INTENT,
        rules=rules,
        now=now,
        note=f"{CUSTOMER} tapped {INTENT_STOP} ({wamid}) {words}",
    )

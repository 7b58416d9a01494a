"""Opt-in signals from the customer and from WhatsApp, recorded in the consent ledger.

- a stop or start word typed as the whole message (source ``keyword``) and a template
  quick-reply with a stop or resume payload (source ``button``): the customer is
  answered with the configured confirmation, sent as free text in the window their
  message just opened;
- Meta's ``user_preferences`` notification, ``stop`` / ``resume`` of marketing
  messages (source ``whatsapp_preferences``), also when it comes as a ``system``
  message of type ``user_preference_changed``;
- a failed status with error 131050, see :mod:`engine.outbound.statuses`
  (source ``whatsapp_error``).

Each writes through ``tx.contacts.set_opt_in``, which records a ledger entry only when
the value changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.inbound.consent_rules import ConsentRules, Signal
from engine.models.contact import ConsentSource, Contact
from engine.models.content import TextContent
from engine.models.message import Channel
from engine.outbound.enqueue import OutboundRequest, Refused, enqueue
from engine.store import Tx
from engine.store.contacts import Consent, NewContact
from engine.whatsapp.webhook import UserPreference

MARKETING_PREFERENCE = "marketing_messages"
PREFERENCE_SIGNALS = {"stop": Signal.STOP, "resume": Signal.START}
CUSTOMER = "customer"
WHATSAPP = "whatsapp"


async def apply_customer_signal(
    tx: Tx,
    contact: Contact,
    signal: Signal,
    source: ConsentSource,
    *,
    rules: ConsentRules,
    now: datetime,
    note: str,
    evidence: Mapping[str, Any] | None = None,
) -> None:
    """A stop/start word or button from the customer: record it (``evidence``: their
    message id and words or the button's payload), then confirm it."""
    consent = Consent(source, actor=CUSTOMER, note=note, evidence=evidence)
    await tx.contacts.set_opt_in(contact.id, signal is Signal.START, consent)
    reply = rules.reply(signal)
    if reply:
        request = OutboundRequest(contact, Channel.BOT, TextContent(body=reply[:4096]))
        # Meta may deliver the word days late, when the window it opened has closed:
        # the change of consent stands without an answer then.
        with contextlib.suppress(Refused):
            await enqueue(tx, request, now=now)


def preference_signal(category: str | None, value: str | None) -> Signal | None:
    if category not in (None, MARKETING_PREFERENCE) or value is None:
        return None
    return PREFERENCE_SIGNALS.get(value.strip().lower())


def through_number(note: str | None, phone_number_id: str | None) -> str | None:
    """A ledger note that says which business number the customer's choice came through
    (the opt-in itself is one value for the business: the customer told the business).

    >>> through_number("User requested to stop marketing messages", "106540352242922")
    'User requested to stop marketing messages (through business number 106540352242922)'
    """
    if phone_number_id is None:
        return note
    through = f"through business number {phone_number_id}"
    return f"{note} ({through})" if note else through


async def apply_user_preference(
    tx: Tx, preference: UserPreference, *, name: str | None, via: str | None = None
) -> bool:
    """Meta's ``user_preferences`` item; False when it is not about marketing messages.

    A preference can come from someone who never wrote to us (they stopped our
    marketing from WhatsApp's settings); they become a contact so that the choice is
    not lost.
    """
    signal = preference_signal(preference.category, preference.value)
    if signal is None or (preference.wa_id is None and preference.user_id is None):
        return False
    await apply_whatsapp_preference(
        tx,
        signal,
        wa_id=preference.wa_id,
        user_id=preference.user_id,
        name=name,
        note=through_number(preference.detail, via),
        evidence={
            "category": preference.category,
            "value": preference.value,
            "detail": preference.detail,
        },
    )
    return True


async def apply_whatsapp_preference(
    tx: Tx,
    signal: Signal,
    *,
    wa_id: str | None,
    user_id: str | None,
    name: str | None,
    note: str | None,
    evidence: Mapping[str, Any] | None = None,
) -> None:
    opted_in = signal is Signal.START
    consent = Consent(
        ConsentSource.WHATSAPP_PREFERENCES, actor=WHATSAPP, note=note, evidence=evidence
    )
    contact, created = await tx.contacts.get_or_create(
        NewContact(marketing_opt_in=opted_in, wa_id=wa_id, user_id=user_id, name=name), consent
    )
    if not created:
        await tx.contacts.set_opt_in(contact.id, opted_in, consent)

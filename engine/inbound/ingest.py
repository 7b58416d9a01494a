"""The store job for one webhook notification: everything is stored before Meta is answered.

For each message: the contact (created on first contact with the configured default
opt-in, source ``inbound``), the message row (unique on its wamid, so a redelivery
stores nothing and triggers nothing), the 24-hour window, consent signals, and the
hand-off that the dispatcher delivers to the conversation handler once the webhook
has answered. Then ``user_preferences`` and ``statuses``.

A message written in a group (``group_id``) is kept with its author, but it is not a
one-to-one conversation: it opens no window, changes no one's consent (a STOP there is
said to the group) and is never handed to the bot for a private answer.

The job runs inside the store's single writer, so it does no I/O besides ``tx`` and
no waiting; under load the writer commits many notifications together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from engine.ids import new_id
from engine.inbound.consent import (
    CUSTOMER,
    apply_customer_signal,
    apply_user_preference,
    apply_whatsapp_preference,
    preference_signal,
)
from engine.inbound.consent_intent import (
    BUTTONS,
    IntentSettings,
    Raised,
    answer_intent,
    raise_intent,
)
from engine.inbound.consent_rules import ConsentRules, Signal
from engine.inbound.input_from_message import customer_input
from engine.inbound.intent import Intent
from engine.inbound.number_change import apply_number_change
from engine.inbound.number_health import apply_quality_update
from engine.inbound.template_updates import TemplateResult, apply_template_change
from engine.models.contact import ConsentSource, opt_in_of_new_contact
from engine.models.message import Direction, Message, MessageStatus, StatusChange
from engine.outbound.marketing_limit import DEFAULT_MARKETING_LIMIT, MarketingLimitRetry
from engine.outbound.statuses import StatusResult, apply_status
from engine.store import Tx
from engine.store.contacts import Consent, NewContact
from engine.store.inbound import Delivery, Handoff, Outcome
from engine.whatsapp.number_health import quality_updates
from engine.whatsapp.webhook import InboundMessage, Notification, Value, WhatsAppError

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class IngestSettings:
    rules: ConsentRules
    default_opt_in: bool
    marketing_limit: MarketingLimitRetry = DEFAULT_MARKETING_LIMIT
    """When a message a ``failed`` status says Meta held back (131049) goes again."""
    intent: IntentSettings = field(default_factory=IntentSettings)
    default_number: str | None = None
    """``WA_PHONE_NUMBER_ID``: the number of a value that carries no metadata."""


@dataclass(slots=True)
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    to_dispatch: int = 0
    consent_signals: int = 0
    number_changes: int = 0
    statuses: Counter[StatusResult] = field(default_factory=Counter)
    errors: list[WhatsAppError] = field(default_factory=list)
    """Errors Meta reported (``value.errors[]`` and on messages), for the log."""
    unknown_number: int = 0
    """Messages to a business number not registered here: stored, never answered."""
    health_updates: int = 0
    """Quality updates applied to a registered number."""
    templates: Counter[TemplateResult] = field(default_factory=Counter)
    """What the template webhooks (status, quality, category) did to the catalogue."""
    deliveries: list[Delivery] = field(default_factory=list)
    """What the dispatcher needs of the hand-offs to dispatch, as this job left them,
    so that it need not read them back (a few, whose contact changed, it does read)."""


async def ingest(
    tx: Tx,
    notification: Notification,
    *,
    settings: IngestSettings,
    now: datetime,
    intents: Mapping[str, Intent] | None = None,
) -> IngestResult:
    """``intents``: what :func:`engine.inbound.consent_intent.read_intents` read in the
    notification's texts, by wamid."""
    result = IngestResult()
    for value in notification.values():
        result.errors.extend(value.errors)
        number = await _business_number(tx, value, settings)
        for message in value.messages:
            intent = intents.get(message.id) if intents else None
            await _message(tx, value, message, settings, now, result, number, intent)
        for preference in value.user_preferences:
            name = _name_of(value, preference.wa_id, preference.user_id)
            if await apply_user_preference(tx, preference, name=name, via=_named(value)):
                result.consent_signals += 1
        for update in value.statuses:
            applied = await apply_status(
                tx, update, now=now, via=_named(value), marketing_limit=settings.marketing_limit
            )
            result.statuses[applied] += 1
    for quality in quality_updates(notification):
        if await apply_quality_update(tx, quality, now=now):
            result.health_updates += 1
    for change in notification.template_changes():
        result.templates[await apply_template_change(tx, change, now=now)] += 1
    return result


def _named(value: Value) -> str | None:
    """The business number a value names (its metadata)."""
    return value.metadata.phone_number_id if value.metadata else None


async def _business_number(tx: Tx, value: Value, settings: IngestSettings) -> str | None:
    """The registered number a value's messages came to; None: one not registered here
    (or none named where no default is set)."""
    named = _named(value)
    if named is None or settings.default_number is None or named == settings.default_number:
        # No metadata: the configured number. No configured number (an embedding's own
        # ingest): every number is taken as it comes.
        return named or settings.default_number
    return named if await tx.numbers.get(named) is not None else None


def _unknown(value: Value, number: str | None, settings: IngestSettings) -> bool:
    """Written to a business number this install does not have."""
    return number is None and (_named(value) or settings.default_number) is not None


def _name_of(value: Value, wa_id: str | None, user_id: str | None) -> str | None:
    for contact in value.contacts:
        if (wa_id and contact.wa_id == wa_id) or (user_id and contact.user_id == user_id):
            return contact.profile.name if contact.profile else None
    return None


async def _message(
    tx: Tx,
    value: Value,
    message: InboundMessage,
    settings: IngestSettings,
    now: datetime,
    result: IngestResult,
    number: str | None,
    intent: Intent | None = None,
) -> None:
    profile = value.profile_of(message)
    wa_id = message.from_ or (profile.wa_id if profile else None)
    user_id = message.from_user_id or (profile.user_id if profile else None)
    name = profile.profile.name if profile and profile.profile else None
    contact, created = await tx.contacts.get_or_create(
        NewContact(
            marketing_opt_in=opt_in_of_new_contact(None, default=settings.default_opt_in),
            wa_id=wa_id,
            user_id=user_id,
            name=name,
        ),
        Consent(ConsentSource.INBOUND, note=f"first message {message.id}"),
    )
    said = customer_input(message)
    row = Message(
        id=new_id(),
        direction=Direction.INBOUND,
        contact_id=contact.id,
        contact=contact.address,
        kind=message.type,
        text=said.text,
        payload=message.raw,
        status=MessageStatus.RECEIVED,
        # An inbound message has one status, the one it is stored with.
        history=(StatusChange(status=MessageStatus.RECEIVED, at=now),),
        wamid=message.id,
        created_at=now,
        updated_at=now,
    )
    if not await tx.messages.insert(row, phone_number_id=number):
        result.duplicates += 1
        return
    result.stored += 1
    result.errors.extend(message.errors)
    if not created and contact.name is None and name:
        contact = await tx.contacts.update(contact.id, name=name)

    if _unknown(value, number, settings):
        # Written to a number this install does not have: kept, but it opens no window,
        # changes no consent and is never answered (least of all from another number).
        await tx.inbound.add_handoff(
            row.id, contact.id, said, new_contact=created, handled=(Outcome.UNKNOWN_NUMBER, now)
        )
        result.unknown_number += 1
        return

    if message.group_id is not None:
        await tx.inbound.add_handoff(
            row.id, contact.id, said, new_contact=created, handled=(Outcome.GROUP, now)
        )
        return

    if message.type == SYSTEM:
        # A notice from WhatsApp about the customer, not something they said: it opens
        # no window and is not answered.
        system = message.system
        signal = preference_signal(None, system.marketing) if system else None
        if system is not None and signal is not None:
            await apply_whatsapp_preference(
                tx,
                signal,
                wa_id=wa_id,
                user_id=user_id,
                name=name,
                note=system.body,
                evidence={"message_id": message.id, "system": system.body},
            )
            result.consent_signals += 1
        if system is not None and await apply_number_change(tx, contact, system, message.id):
            result.number_changes += 1
        await tx.inbound.add_handoff(
            row.id, contact.id, said, new_contact=created, handled=(Outcome.SYSTEM, now)
        )
        return

    # Meta may deliver late (it retries for days): the window runs from when the
    # customer wrote, never from the future.
    written_at = min(message.timestamp or now, now)
    conversation = await tx.conversations.record_inbound(contact.id, written_at)
    if number is not None:
        await tx.numbers.record_inbound(contact.id, number, written_at)

    signal, source = None, ConsentSource.KEYWORD
    if message.type == "text":
        signal = settings.rules.keyword(said.text)
    elif message.type == "button":
        signal, source = settings.rules.button(said.choice_id), ConsentSource.BUTTON
    if signal is not None:
        await apply_customer_signal(
            tx,
            contact,
            signal,
            source,
            rules=settings.rules,
            now=now,
            note=f"{CUSTOMER} sent {said.choice_id or said.text!r} ({message.id})",
            evidence={"message_id": message.id, "text": said.text}
            if source is ConsentSource.KEYWORD
            else {"message_id": message.id, "button_payload": said.choice_id},
        )
        result.consent_signals += 1
    consumed = signal is Signal.STOP  # consent changed and the confirmation answers it
    if message.type == "interactive" and said.choice_id in BUTTONS:
        # The answer to the question about an opt-out read in the customer's words.
        await answer_intent(tx, contact, said.choice_id, message.id, rules=settings.rules, now=now)
        result.consent_signals += 1
        consumed = True
    elif signal is None and intent is not None:
        raised = await raise_intent(
            tx, contact, conversation, row, intent, settings=settings.intent, now=now
        )
        consumed = raised is Raised.ASKED  # the question answers the message
    if consumed:
        await tx.inbound.add_handoff(
            row.id, contact.id, said, new_contact=created, handled=(Outcome.CONSUMED, now)
        )
        return
    await tx.inbound.add_handoff(row.id, contact.id, said, new_contact=created)
    result.to_dispatch += 1
    if signal is None:  # (a start word changed the contact: that one is read back)
        handoff = Handoff(message_id=row.id, contact_id=contact.id, new_contact=created)
        result.deliveries.append(Delivery(handoff, row, contact, conversation, said))

"""Opt-in signals from customers and from WhatsApp, as the consent ledger records them."""

from __future__ import annotations

import copy
from typing import Any

from engine.clock import FrozenClock
from engine.inbound.consent_rules import ConsentRules
from engine.models import ConsentSource
from engine.models.message import Channel, Direction, Message, MessageStatus
from engine.store import Store
from engine.store.contacts import Consent, NewContact
from engine.store.inbound import Outcome
from engine.store.messages import MessageFilter
from tests.inbound_support import (
    ANN,
    START_REPLY,
    STOP_REPLY,
    contact_of,
    first_message,
    ingest_json,
    load,
    text_notification,
)


async def ledger(store: Store, address: str = ANN) -> list[tuple[bool, ConsentSource]]:
    contact = await contact_of(store, address)
    async with store.read() as tx:
        events = await tx.contacts.consent_history(contact.id)
    return [(event.marketing_opt_in, event.source) for event in events]


async def replies(store: Store) -> list[Message]:
    async with store.read() as tx:
        return [
            m for m in await tx.messages.find(MessageFilter()) if m.direction is Direction.OUTBOUND
        ]


async def outcome_of(store: Store, wamid: str) -> Outcome | None:
    async with store.read() as tx:
        message = await tx.messages.get_by_wamid(wamid)
        assert message is not None
        handoff = await tx.inbound.get_handoff(message.id)
    assert handoff is not None
    return handoff.outcome


async def test_stop_then_start_by_keyword_each_confirmed(store: Store, clock: FrozenClock) -> None:
    await ingest_json(store, text_notification("Stop.", wamid="wamid.stop"), clock.now())
    await ingest_json(store, text_notification("stop", wamid="wamid.stop2"), clock.now())
    await ingest_json(store, text_notification("START", wamid="wamid.start"), clock.now())

    assert await ledger(store) == [
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.KEYWORD),
        (True, ConsentSource.KEYWORD),
    ], "a second STOP changes nothing, so it adds no entry"
    assert [(r.channel, r.text, r.status) for r in await replies(store)] == [
        (Channel.BOT, STOP_REPLY, MessageStatus.QUEUED),
        (Channel.BOT, STOP_REPLY, MessageStatus.QUEUED),
        (Channel.BOT, START_REPLY, MessageStatus.QUEUED),
    ]
    assert await outcome_of(store, "wamid.stop") is Outcome.CONSUMED
    assert await outcome_of(store, "wamid.start") is None, "a start word reaches the bot"
    contact = await contact_of(store, ANN)
    async with store.read() as tx:
        events = await tx.contacts.consent_history(contact.id)
    assert events[1].actor == "customer"
    assert events[1].note == "customer sent 'Stop.' (wamid.stop)"


async def test_an_empty_confirmation_is_not_sent(store: Store, clock: FrozenClock) -> None:
    silent = ConsentRules.build(stop_reply="", start_reply="")
    await ingest_json(store, text_notification("STOP", wamid="wamid.s"), clock.now(), rules=silent)
    assert (await contact_of(store, ANN)).marketing_opt_in is False
    assert await replies(store) == []


async def test_stop_and_resume_buttons(store: Store, clock: FrozenClock) -> None:
    stop = load("template_quick_reply_stop")
    resume = copy.deepcopy(stop)
    first_message(resume).update(
        id="wamid.resume", button={"payload": "RESUME_PROMOTIONS", "text": "Send me offers"}
    )
    await ingest_json(store, stop, clock.now())
    await ingest_json(store, resume, clock.now())
    assert await ledger(store) == [
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.BUTTON),
        (True, ConsentSource.BUTTON),
    ]
    assert [r.text for r in await replies(store)] == [STOP_REPLY, START_REPLY]


async def test_a_payload_that_is_not_configured_is_an_ordinary_button(
    store: Store, clock: FrozenClock
) -> None:
    data = load("template_quick_reply_stop")
    first_message(data)["button"] = {"payload": "OTHER", "text": "Stop promotions"}
    await ingest_json(store, data, clock.now())
    assert await ledger(store) == [(True, ConsentSource.INBOUND)]
    assert await outcome_of(store, first_message(data)["id"]) is None


async def test_a_stop_word_as_a_caption_is_not_a_keyword(store: Store, clock: FrozenClock) -> None:
    data = load("image")
    first_message(data)["image"]["caption"] = "STOP"
    await ingest_json(store, data, clock.now())
    assert await ledger(store) == [(True, ConsentSource.INBOUND)]


async def test_user_preferences_create_an_unknown_contact_opted_out(
    store: Store, clock: FrozenClock
) -> None:
    result = await ingest_json(store, load("user_preferences_stop"), clock.now())
    assert result.consent_signals == 1
    contact = await contact_of(store, ANN)
    assert (contact.name, contact.marketing_opt_in) == ("Sheena Nelson", False)
    assert await ledger(store) == [(False, ConsentSource.WHATSAPP_PREFERENCES)]
    async with store.read() as tx:
        events = await tx.contacts.consent_history(contact.id)
    # The business number it came through (the notification's metadata) is kept with it.
    assert events[0].note == (
        "User requested to stop marketing messages (through business number 106540352242922)"
    )


async def test_user_preferences_about_something_else_are_ignored(
    store: Store, clock: FrozenClock
) -> None:
    await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id=ANN, marketing_opt_in=True), Consent(ConsentSource.API)
        )
    )
    data = load("user_preferences_stop")
    preference: dict[str, Any] = data["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    for change in ({"category": "calls"}, {"value": "later"}):
        changed = copy.deepcopy(data)
        changed["entry"][0]["changes"][0]["value"]["user_preferences"][0] = {
            **preference,
            **change,
        }
        result = await ingest_json(store, changed, clock.now())
        assert result.consent_signals == 0
    assert await ledger(store) == [(True, ConsentSource.API)]


async def test_a_preference_by_business_scoped_user_id(store: Store, clock: FrozenClock) -> None:
    data = load("user_preferences_stop")
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "Pablo"}, "user_id": "US.1349"}]
    value["user_preferences"][0].pop("wa_id")
    value["user_preferences"][0]["user_id"] = "US.1349"
    await ingest_json(store, data, clock.now())
    contact = await contact_of(store, "US.1349")
    assert (contact.wa_id, contact.name, contact.marketing_opt_in) == (None, "Pablo", False)


async def test_a_system_message_about_marketing_preferences_counts_as_one(
    store: Store, clock: FrozenClock
) -> None:
    await ingest_json(store, load("text"), clock.now())
    data = load("system_user_changed_number")
    first_message(data)["system"] = {
        "body": "User requested to stop marketing messages",
        "marketing": "stop",
        "type": "user_preference_changed",
    }
    await ingest_json(store, data, clock.now())
    assert await ledger(store) == [
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.WHATSAPP_PREFERENCES),
    ]
    assert await outcome_of(store, first_message(data)["id"]) is Outcome.SYSTEM

"""The store job of one notification, against a real SQLite file."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from engine.clock import FrozenClock
from engine.models import ConsentSource
from engine.models.message import Direction
from engine.store import Store
from engine.store.contacts import Consent, NewContact
from engine.store.messages import MessageFilter
from tests.inbound_support import (
    ANN,
    contact_of,
    first_message,
    ingest_json,
    load,
    text_notification,
)


async def test_a_redelivered_notification_changes_nothing(store: Store, clock: FrozenClock) -> None:
    data = load("text")
    first = await ingest_json(store, data, clock.now())
    clock.advance(hours=1)
    again = await ingest_json(store, data, clock.now())
    assert (first.stored, first.duplicates, first.to_dispatch) == (1, 0, 1)
    assert (again.stored, again.duplicates, again.to_dispatch) == (0, 1, 0)
    contact = await contact_of(store, ANN)
    async with store.read() as tx:
        messages = await tx.messages.find(MessageFilter())
        ledger = await tx.contacts.consent_history(contact.id)
        waiting = await tx.inbound.count_waiting()
        conversation = await tx.conversations.get(contact.id)
    assert len(messages) == 1
    assert len(ledger) == 1
    assert waiting == 1
    assert conversation.last_inbound_at == datetime(2026, 3, 2, 8, 59, tzinfo=UTC)


async def test_first_contact_uses_the_configured_default_opt_in(
    store: Store, clock: FrozenClock
) -> None:
    await ingest_json(store, load("text"), clock.now(), default_opt_in=False)
    contact = await contact_of(store, ANN)
    assert (contact.name, contact.marketing_opt_in) == ("Sheena Nelson", False)
    async with store.read() as tx:
        ledger = await tx.contacts.consent_history(contact.id)
    assert [(e.marketing_opt_in, e.source) for e in ledger] == [(False, ConsentSource.INBOUND)]


async def test_a_known_contact_keeps_its_name_and_gets_one_when_it_had_none(
    store: Store, clock: FrozenClock
) -> None:
    await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id=ANN, marketing_opt_in=False), Consent(ConsentSource.API)
        )
    )
    await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id="60173526233", name="Jen", marketing_opt_in=True),
            Consent(ConsentSource.API),
        )
    )
    await ingest_json(store, load("batch"), clock.now())
    ann = await contact_of(store, ANN)
    assert (ann.name, ann.marketing_opt_in) == ("Sheena Nelson", False)
    assert (await contact_of(store, "60173526233")).name == "Jen"


async def test_the_window_runs_from_when_the_customer_wrote_never_the_future(
    store: Store, clock: FrozenClock
) -> None:
    late = text_notification("sent yesterday", wamid="wamid.late")
    first_message(late)["timestamp"] = str(int((clock.now() - timedelta(days=1)).timestamp()))
    future = text_notification("from the future", wamid="wamid.future")
    first_message(future)["timestamp"] = str(int((clock.now() + timedelta(hours=3)).timestamp()))

    await ingest_json(store, late, clock.now())
    contact = await contact_of(store, ANN)
    async with store.read() as tx:
        assert (await tx.conversations.get(contact.id)).last_inbound_at == clock.now() - timedelta(
            days=1
        )
    await ingest_json(store, future, clock.now())
    async with store.read() as tx:
        assert (await tx.conversations.get(contact.id)).last_inbound_at == clock.now()


async def test_a_business_scoped_user_id_maps_to_the_contact_known_by_phone(
    store: Store, clock: FrozenClock
) -> None:
    with_both = load("business_scoped_user_with_phone")
    phone = first_message(with_both)["from"]
    user_id = first_message(with_both)["from_user_id"]
    await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id=phone, marketing_opt_in=True), Consent(ConsentSource.IMPORT)
        )
    )
    await ingest_json(store, with_both, clock.now())
    known = await contact_of(store, phone)
    assert known.user_id == user_id, "the contact learns its business-scoped id"

    only_user_id = copy.deepcopy(with_both)
    message = first_message(only_user_id)
    del message["from"]
    message["id"] = "wamid.no-phone"
    del only_user_id["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"]
    await ingest_json(store, only_user_id, clock.now())
    async with store.read() as tx:
        rows = await tx.messages.find(MessageFilter(contact_id=known.id))
        everyone = await tx.contacts.list()
    assert [m.wamid for m in rows] == [first_message(with_both)["id"], "wamid.no-phone"]
    assert len(everyone) == 1


async def test_a_user_known_only_by_user_id_is_a_contact_without_a_phone(
    store: Store, clock: FrozenClock
) -> None:
    await ingest_json(store, load("business_scoped_user"), clock.now())
    contact = await contact_of(store, "US.13491208655302741918")
    assert (contact.wa_id, contact.name, contact.address) == (
        None,
        "Pablo Morales",
        "US.13491208655302741918",
    )


async def test_messages_of_a_batch_are_stored_in_the_order_meta_sent_them(
    store: Store, clock: FrozenClock
) -> None:
    result = await ingest_json(store, load("batch"), clock.now())
    assert (result.stored, result.to_dispatch) == (3, 3)
    async with store.read() as tx:
        pending = await tx.inbound.deliveries(exclude=(), limit=10)
        stored = await tx.messages.find(MessageFilter())
    assert [d.message.text for d in pending] == ["First", "Selamat pagi", "Second"]
    assert all(m.direction is Direction.INBOUND for m in stored)
    assert [d.handoff.new_contact for d in pending] == [True, True, False]

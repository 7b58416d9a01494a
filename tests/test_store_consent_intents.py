"""The store of opt-out intents (both backends): the latest per contact, and its answer."""

from __future__ import annotations

from dataclasses import replace

from engine.clock import FrozenClock
from engine.models import ConsentSource
from engine.store import Store, Tx
from engine.store.consent_intents import IntentAnswer, IntentMode, RaisedIntent
from engine.store.contacts import Consent, NewContact


async def test_the_latest_intent_is_kept_with_its_answer(store: Store, clock: FrozenClock) -> None:
    async def setup(tx: Tx) -> int:
        contact = await tx.contacts.create(
            NewContact(wa_id="16505550100", marketing_opt_in=True), Consent(ConsentSource.API)
        )
        return contact.id

    contact_id = await store.write(setup)
    first = RaisedIntent(
        contact_id=contact_id,
        message_id="m1",
        wamid="wamid.1",
        text="arrêtez les pubs — s'il vous plaît",
        language="fr",
        evidence="arretez … pubs",
        mode=IntentMode.ASKED,
        raised_at=clock.now(),
    )
    await store.write(lambda tx: tx.consent_intents.put(first))
    async with store.read() as tx:
        assert await tx.consent_intents.get(contact_id) == first
        assert await tx.consent_intents.get(contact_id + 1) is None

    clock.advance(minutes=5)
    answered_at = clock.now()
    await store.write(
        lambda tx: tx.consent_intents.answer(contact_id, IntentAnswer.KEEP, answered_at)
    )
    async with store.read() as tx:
        kept = await tx.consent_intents.get(contact_id)
    assert kept == replace(first, answer=IntentAnswer.KEEP, answered_at=answered_at)

    clock.advance(days=40)
    second = replace(
        first,
        message_id="m2",
        wamid=None,
        text="no more offers",
        language="en",
        mode=IntentMode.SUGGESTED,
        raised_at=clock.now(),
    )
    await store.write(lambda tx: tx.consent_intents.put(second))
    async with store.read() as tx:
        assert await tx.consent_intents.get(contact_id) == second, "replaces, answer and all"

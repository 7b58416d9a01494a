"""WhatsApp's ``user_changed_number`` system message (Meta's sample shape: sent from the
old number, the new one in ``system.wa_id``) moves the contact, on the store under test."""

from __future__ import annotations

import copy
import logging

import pytest

from engine.clock import FrozenClock
from engine.models import ConsentSource
from engine.store import Store
from engine.store.contacts import Consent, NewContact
from engine.store.inbound import Outcome
from engine.whatsapp.webhook import parse_notification
from tests.inbound_support import ANN, contact_of, first_message, ingest_json, load

NEW_NUMBER = "12195555358"  # system.wa_id of the fixture


def test_meta_sample_reads_as_a_number_change() -> None:
    [(_, message)] = list(parse_notification(load("system_user_changed_number")).inbound_messages())
    assert message.system is not None
    assert (message.from_, message.type) == (ANN, "system")
    assert (message.system.type, message.system.wa_id) == ("user_changed_number", NEW_NUMBER)


async def test_a_stop_survives_a_number_change(store: Store, clock: FrozenClock) -> None:
    await ingest_json(store, load("text_stop_keyword"), clock.now())
    stopped = await contact_of(store, ANN)
    assert stopped.marketing_opt_in is False
    clock.advance(hours=1)

    result = await ingest_json(store, load("system_user_changed_number"), clock.now())

    assert result.number_changes == 1
    moved = await contact_of(store, NEW_NUMBER)
    assert (moved.id, moved.marketing_opt_in) == (stopped.id, False)
    async with store.read() as tx:
        assert await tx.contacts.get(ANN) is None
        history = await tx.contacts.consent_history(moved.id)
        notice = await tx.messages.get_by_wamid(
            first_message(load("system_user_changed_number"))["id"]
        )
        assert notice is not None
        handoff = await tx.inbound.get_handoff(notice.id)
    assert [(e.marketing_opt_in, e.source) for e in history][-1] == (
        False,
        ConsentSource.NUMBER_CHANGE,
    )
    assert history[-1].note is not None
    assert f"from {ANN} to {NEW_NUMBER}" in history[-1].note
    assert notice.contact_id == moved.id
    assert handoff is not None
    assert handoff.outcome is Outcome.SYSTEM


async def test_the_new_number_already_a_contact_is_merged_and_a_stop_on_either_stands(
    store: Store, clock: FrozenClock
) -> None:
    # The old number is opted in; the new one had been imported and had opted out.
    await ingest_json(store, load("text"), clock.now())
    await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id=NEW_NUMBER, marketing_opt_in=False), Consent(ConsentSource.IMPORT)
        )
    )
    old = await contact_of(store, ANN)

    await ingest_json(store, load("system_user_changed_number"), clock.now())

    one = await contact_of(store, NEW_NUMBER)
    assert (one.id, one.marketing_opt_in) == (old.id, False)
    async with store.read() as tx:
        history = await tx.contacts.consent_history(one.id)
    assert [e.source for e in history][-2:] == [
        ConsentSource.CONTACT_LINK,
        ConsentSource.NUMBER_CHANGE,
    ]


@pytest.mark.parametrize("new_number", [None, "not-a-number", "+12195555358", "999"])
async def test_a_number_change_without_a_valid_new_number_is_stored_and_logged(
    store: Store, clock: FrozenClock, new_number: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    data = copy.deepcopy(load("system_user_changed_number"))
    system = first_message(data)["system"]
    if new_number is None:
        del system["wa_id"]
    else:
        system["wa_id"] = new_number
    with caplog.at_level(logging.WARNING):
        result = await ingest_json(store, data, clock.now())
    assert (result.stored, result.number_changes) == (1, 0)
    assert (await contact_of(store, ANN)).wa_id == ANN
    assert "names no valid new number" in caplog.text

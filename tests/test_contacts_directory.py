"""The contact use cases the REST API and the console share, against a real store:
results, or refusals that name what is wrong."""

from __future__ import annotations

import pytest

from engine.contacts import directory
from engine.contacts.refusals import ContactExists, ContactNotFound, InvalidAddress
from engine.models.contact import ConsentSource
from engine.store import Store
from engine.store.contacts import Consent, NewContact

API = Consent(ConsentSource.API, actor="api")


def test_an_address_is_a_number_in_any_form_or_a_user_id() -> None:
    assert directory.contact_address("+1 (650) 555-1234", "US") == "16505551234"
    assert directory.contact_address("US.13491208655302741918", "US").startswith("US.")
    with pytest.raises(InvalidAddress) as refused:
        directory.contact_address("not a number", "US")
    assert refused.value.field == "wa_id"


async def test_a_contact_is_created_once(store: Store) -> None:
    new = NewContact(wa_id="16505551234", marketing_opt_in=True)
    created = await directory.create_contact(store, new, API)
    assert created.wa_id == "16505551234"
    with pytest.raises(ContactExists, match="contact 16505551234 already exists"):
        await directory.create_contact(store, new, API)


async def test_an_opt_in_change_is_in_the_ledger_and_an_unknown_contact_is_refused(
    store: Store,
) -> None:
    await directory.create_contact(
        store, NewContact(wa_id="16505551234", marketing_opt_in=True), API
    )
    agent = Consent(ConsentSource.AGENT, actor="ann@example.com", note="asked by phone")
    contact, history = await directory.set_opt_in(store, "16505551234", False, agent)
    assert contact.marketing_opt_in is False
    assert [(e.marketing_opt_in, e.source) for e in history][-1] == (False, ConsentSource.AGENT)
    with pytest.raises(ContactNotFound) as refused:
        await directory.set_opt_in(store, "447700900123", False, agent)
    assert refused.value.address == "447700900123"
    changed = await directory.change_contact(
        store, "16505551234", directory.ContactChanges(tags=["vip", "vip", "a"]), API
    )
    assert changed.tags == ("a", "vip")

"""One person, one contact: a number and a user id that were two contacts are merged,
and a number change moves the contact, on the store under test (SQLite, or PostgreSQL
with OPTINFLOW_TEST_BACKEND=postgres), fed by Meta-shaped notifications."""

from __future__ import annotations

import copy
from typing import Any

from engine.clock import FrozenClock
from engine.models import ConsentSource, Owner
from engine.models.campaign import (
    Enrolment,
    EnrolmentState,
    MessageSequence,
    SequenceDefinition,
    SequenceStep,
)
from engine.models.contact import Contact
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.store.flow_sessions import WakeupKind
from engine.store.messages import MessageFilter
from tests.inbound_support import ANN, first_message, ingest_json, load

USER_ID = "US.13491208655302741918"
NEW_NUMBER = "12195555358"
API = Consent(ConsentSource.API)


def with_phone_and_user_id(wa_id: str, user_id: str, wamid: str) -> dict[str, Any]:
    """Meta's message from a customer it names by number and user id together."""
    data = copy.deepcopy(load("business_scoped_user_with_phone"))
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update(wa_id=wa_id, user_id=user_id)
    first_message(data).update({"from": wa_id, "from_user_id": user_id, "id": wamid})
    return data


async def contact(store: Store, address: str) -> Contact | None:
    async with store.read() as tx:
        return await tx.contacts.get(address)


async def ledger(store: Store, contact_id: int) -> list[tuple[bool, ConsentSource]]:
    async with store.read() as tx:
        events = await tx.contacts.consent_history(contact_id)
    return [(event.marketing_opt_in, event.source) for event in events]


async def stop(store: Store, contact_id: int, note: str) -> None:
    await store.write(
        lambda tx: tx.contacts.set_opt_in(
            contact_id, False, Consent(ConsentSource.KEYWORD, actor="customer", note=note)
        )
    )


async def test_a_number_and_a_user_id_that_were_two_contacts_become_one_opted_out(
    store: Store, clock: FrozenClock
) -> None:
    # Ann writes from her number; later someone known by a user id only writes and
    # says STOP; then Meta names both together: they are one person.
    await ingest_json(store, load("text"), clock.now())
    clock.advance(hours=1)
    later = load("business_scoped_user")
    first_message(later)["timestamp"] = str(int(clock.now().timestamp()))
    await ingest_json(store, later, clock.now())
    wrote_last = clock.now()
    by_number, by_user_id = await contact(store, ANN), await contact(store, USER_ID)
    assert by_number is not None
    assert by_user_id is not None
    assert by_number.id != by_user_id.id
    await stop(store, by_user_id.id, "STOP from the username")
    await store.write(lambda tx: tx.contacts.add_tags(by_number.id, ["vip"]))
    await store.write(lambda tx: tx.contacts.add_tags(by_user_id.id, ["spanish"]))
    clock.advance(hours=1)

    await ingest_json(store, with_phone_and_user_id(ANN, USER_ID, "wamid.both"), clock.now())

    one = await contact(store, ANN)
    assert one is not None
    assert await contact(store, USER_ID) == one
    assert (one.id, one.wa_id, one.user_id) == (by_number.id, ANN, USER_ID)
    assert one.marketing_opt_in is False, "the STOP said to either stands"
    assert one.tags == ("spanish", "vip")
    async with store.read() as tx:
        messages = await tx.messages.find(MessageFilter(contact_id=one.id))
        everyone = await tx.contacts.list()
        conversation = await tx.conversations.get(one.id)
        history = await tx.contacts.consent_history(one.id)
    assert len(messages) == 3, "both histories are the contact's"
    assert [c.id for c in everyone] == [one.id], "the merged contact is not listed"
    assert conversation.last_inbound_at == wrote_last, "the later of the two windows"
    # Both ledgers, and the entry that says why, oldest first.
    assert [(e.marketing_opt_in, e.source) for e in history] == [
        (True, ConsentSource.INBOUND),
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.KEYWORD),
        (False, ConsentSource.CONTACT_LINK),
    ]
    note = history[-1].note or ""
    assert f"user_id {USER_ID}, opted out" in note
    assert f"wa_id {ANN}, opted in" in note


async def test_two_contacts_both_opted_in_stay_opted_in_when_linked(
    store: Store, clock: FrozenClock
) -> None:
    await ingest_json(store, load("text"), clock.now())
    await ingest_json(store, load("business_scoped_user"), clock.now())
    await ingest_json(store, with_phone_and_user_id(ANN, USER_ID, "wamid.both"), clock.now())
    one = await contact(store, USER_ID)
    assert one is not None
    assert one.wa_id == ANN
    assert one.marketing_opt_in is True
    assert (await ledger(store, one.id))[-1] == (True, ConsentSource.CONTACT_LINK)


async def test_a_user_id_learnt_later_is_added_to_the_contact_without_a_merge(
    store: Store, clock: FrozenClock
) -> None:
    await ingest_json(store, load("text"), clock.now())
    await ingest_json(store, with_phone_and_user_id(ANN, USER_ID, "wamid.both"), clock.now())
    one = await contact(store, USER_ID)
    assert one is not None
    assert (one.wa_id, one.user_id) == (ANN, USER_ID)
    assert await ledger(store, one.id) == [(True, ConsentSource.INBOUND)]


async def test_a_number_change_moves_the_contact_with_its_opt_in_and_history(
    store: Store, clock: FrozenClock
) -> None:
    await ingest_json(store, load("text"), clock.now())
    before = await contact(store, ANN)
    assert before is not None
    await stop(store, before.id, "STOP")

    await store.write(
        lambda tx: tx.contacts.change_number(
            before.id, NEW_NUMBER, Consent(ConsentSource.NUMBER_CHANGE, note="old to new")
        )
    )

    after = await contact(store, NEW_NUMBER)
    assert after is not None
    assert (after.id, after.marketing_opt_in) == (before.id, False)
    assert await contact(store, ANN) is None
    assert await ledger(store, after.id) == [
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.KEYWORD),
        (False, ConsentSource.NUMBER_CHANGE),
    ]
    async with store.read() as tx:
        messages = await tx.messages.find(MessageFilter(contact_id=after.id))
    assert len(messages) == 1


async def test_a_number_change_onto_a_contact_merges_it_and_opted_out_wins(
    store: Store, clock: FrozenClock
) -> None:
    # The new number was a contact already, who had said STOP; the old one is opted in.
    await ingest_json(store, load("text"), clock.now())
    holder = await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id=NEW_NUMBER, marketing_opt_in=False, tags=("from_new",)),
            Consent(ConsentSource.IMPORT),
        )
    )
    moved = await contact(store, ANN)
    assert moved is not None
    assert moved.marketing_opt_in is True

    await store.write(
        lambda tx: tx.contacts.change_number(
            moved.id, NEW_NUMBER, Consent(ConsentSource.NUMBER_CHANGE, note="old to new")
        )
    )

    one = await contact(store, NEW_NUMBER)
    assert one is not None
    assert (one.id, one.marketing_opt_in, one.tags) == (moved.id, False, ("from_new",))
    assert await ledger(store, one.id) == [
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.IMPORT),
        (False, ConsentSource.CONTACT_LINK),
        (False, ConsentSource.NUMBER_CHANGE),
    ]
    async with store.read() as tx:
        merged = await tx.contacts.get_by_id(holder.id)
        listed = await tx.contacts.list()
    assert merged is not None
    assert merged.wa_id is None, "its number went to the contact"
    assert [c.id for c in listed] == [one.id]


async def test_a_merge_keeps_one_of_each_place_the_person_holds(
    store: Store, clock: FrozenClock
) -> None:
    """Both contacts in the same sequence, each with a flow session, one held by an
    agent: the merged contact has one active enrolment, the kept contact's session, and
    the agent's hold."""
    now = clock.now()
    sequence = MessageSequence(
        id="seq-1",
        name="welcome",
        version=1,
        definition=SequenceDefinition(steps=(SequenceStep(delay_seconds=60, text="hi"),)),
        created_at=now,
        updated_at=now,
    )

    async def setup(tx: Tx) -> tuple[int, int]:
        kept = await tx.contacts.create(NewContact(wa_id=ANN, marketing_opt_in=True), API)
        other = await tx.contacts.create(NewContact(user_id=USER_ID, marketing_opt_in=True), API)
        await tx.sequences.create(sequence)
        for contact_id in (kept.id, other.id):
            await tx.sequences.enrol(
                Enrolment(
                    id=f"enrolment-{contact_id}",
                    sequence_id=sequence.id,
                    contact_id=contact_id,
                    state=EnrolmentState.ACTIVE,
                    source="api",
                    next_step=0,
                    anchor_at=now,
                    enrolled_at=now,
                    updated_at=now,
                )
            )
            await tx.flow_sessions.put(
                contact_id,
                flow_id=f"flow-{contact_id}",
                waiting_for="reply",
                wait_seq=1,
                state="{}",
                at=now,
            )
            await tx.flow_sessions.schedule(contact_id, WakeupKind.TIMEOUT, 1, now)
            await tx.conversations.record_inbound(contact_id, now)
        await tx.conversations.set_owner(other.id, Owner.AGENT, "ann@example.com")
        return kept.id, other.id

    kept_id, other_id = await store.write(setup)
    await store.write(
        lambda tx: tx.contacts.get_or_create(
            NewContact(wa_id=ANN, user_id=USER_ID, marketing_opt_in=True), API
        )
    )

    async with store.read() as tx:
        active = await tx.sequences.active_contact_ids(sequence.id, [kept_id, other_id])
        theirs = await tx.sequences.enrolment(f"enrolment-{other_id}")
        session = await tx.flow_sessions.get(kept_id)
        gone = await tx.flow_sessions.get(other_id)
        conversation = await tx.conversations.get(kept_id)
    wakeups = await store.write(lambda tx: tx.flow_sessions.claim_due(now, 10))
    assert active == {kept_id}
    assert theirs is not None
    assert (theirs.contact_id, theirs.state) == (kept_id, EnrolmentState.UNENROLLED)
    assert session is not None
    assert session.flow_id == f"flow-{kept_id}"
    assert gone is None
    assert (conversation.owner, conversation.agent) == (Owner.AGENT, "ann@example.com")
    assert [w.contact_id for w in wakeups] == [kept_id]


async def test_after_a_number_change_the_new_user_id_meta_gives_replaces_the_old(
    store: Store, clock: FrozenClock
) -> None:
    # Meta gives a customer a new user id with a new number: once it names the new
    # number with the new user id, either finds the contact.
    await ingest_json(store, with_phone_and_user_id(ANN, USER_ID, "wamid.before"), clock.now())
    await ingest_json(store, load("system_user_changed_number"), clock.now())
    new_user_id = "US.99887766554433221100"
    await ingest_json(
        store, with_phone_and_user_id(NEW_NUMBER, new_user_id, "wamid.after"), clock.now()
    )
    by_number, by_user_id = await contact(store, NEW_NUMBER), await contact(store, new_user_id)
    assert by_number is not None
    assert by_number == by_user_id
    assert await contact(store, USER_ID) is None

"""The desk's store (both backends): assignment and resolution, the agents' own
timeline, saved replies, and search over contacts and message text."""

from __future__ import annotations

from engine.clock import FrozenClock
from engine.models import ConsentSource, Owner
from engine.models.desk_work import DeskEntry, EntryKind, SavedReply
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from tests.desk import receive

ANN, BOB = "ann@example.com", "bob@example.com"


async def add(
    store: Store,
    wa_id: str | None,
    name: str,
    *,
    user_id: str | None = None,
    tags: tuple[str, ...] = (),
) -> int:
    async def job(tx: Tx) -> int:
        contact = await tx.contacts.create(
            NewContact(wa_id=wa_id, user_id=user_id, name=name, marketing_opt_in=True, tags=tags),
            Consent(ConsentSource.API),
        )
        return contact.id

    return await store.write(job)


async def test_assigning_resolving_and_a_new_customer_message_reopening(
    store: Store, clock: FrozenClock
) -> None:
    chris = await add(store, "16505551234", "Chris")
    dana = await add(store, "447911123456", "Dana")
    await receive(store, "16505551234", "hello", clock.now())

    await store.write(lambda tx: tx.assignments.assign(chris, ANN, at=clock.now()))
    await store.write(lambda tx: tx.assignments.assign(dana, ANN, at=clock.now()))
    async with store.read() as tx:
        conversation = await tx.conversations.get(chris)
        assert (conversation.owner, conversation.agent) == (Owner.AGENT, ANN)
        assert await tx.assignments.workload() == {ANN: 2}

    clock.advance(minutes=5)
    await store.write(lambda tx: tx.assignments.resolve(chris, at=clock.now()))
    async with store.read() as tx:
        resolved = await tx.assignments.get(chris)
        assert (resolved.agent, resolved.resolved) == (ANN, True)
        assert await tx.assignments.workload() == {ANN: 1}, "a resolved one is not open"

    clock.advance(minutes=5)
    await receive(store, "16505551234", "one more thing", clock.now())
    async with store.read() as tx:
        assert not (await tx.assignments.get(chris)).resolved, "the customer reopened it"
        assert await tx.assignments.workload() == {ANN: 2}

    await store.write(lambda tx: tx.assignments.resolve(chris, at=clock.now()))
    await store.write(lambda tx: tx.assignments.assign(chris, BOB, at=clock.now()))
    async with store.read() as tx:
        moved = await tx.assignments.get(chris)
        assert (moved.agent, moved.resolved) == (BOB, False), "a transfer opens it"
        assert await tx.assignments.workload() == {ANN: 1, BOB: 1}


async def test_the_desk_log_keeps_notes_and_assignments_in_order(
    store: Store, clock: FrozenClock
) -> None:
    chris = await add(store, "16505551234", "Chris")
    note = DeskEntry(kind=EntryKind.NOTE, author=ANN, text="VIP, be kind", at=clock.now())
    assigned = DeskEntry(
        kind=EntryKind.ASSIGNED, author=ANN, assignee=BOB, text="refund", at=clock.now()
    )
    first = await store.write(lambda tx: tx.desk_log.add(chris, note))
    second = await store.write(lambda tx: tx.desk_log.add(chris, assigned))
    assert first == note.model_copy(update={"id": first.id}), "stored as given, with its id"
    assert first.id is not None
    assert second.id is not None
    assert first.id < second.id, "a later entry has a higher id"
    async with store.read() as tx:
        assert await tx.desk_log.entries(chris) == [first, second]
        assert await tx.desk_log.entries_by_id([second.id, first.id, second.id + 1]) == {
            first.id: first,
            second.id: second,
        }
        assert await tx.desk_log.entries(chris, limit=1) == [second]


async def test_saved_replies_are_replaced_by_shortcut_and_deleted(
    store: Store, clock: FrozenClock
) -> None:
    hours = SavedReply(shortcut="hours", text="9 to 5", updated_by=ANN, updated_at=clock.now())
    await store.write(lambda tx: tx.saved_replies.put(hours))
    changed = hours.model_copy(update={"text": "9 to 6", "updated_by": BOB})
    await store.write(lambda tx: tx.saved_replies.put(changed))
    bye = SavedReply(shortcut="bye", text="Bye!", updated_by=ANN, updated_at=clock.now())
    await store.write(lambda tx: tx.saved_replies.put(bye))
    async with store.read() as tx:
        assert await tx.saved_replies.all() == [bye, changed]
    assert await store.write(lambda tx: tx.saved_replies.delete("hours")) is True
    assert await store.write(lambda tx: tx.saved_replies.delete("hours")) is False


async def test_search_finds_contacts_by_name_number_user_id_and_tag(store: Store) -> None:
    await add(store, "16505551234", "Chris Moreno", tags=("vip",))
    await add(store, "447911123456", "Dana Okafor", tags=("wholesale",))
    await add(store, None, "Eli", user_id="US.13491208655302741918")
    await add(store, "4915123456789", "100% Real")

    async def names(text: str) -> list[str | None]:
        async with store.read() as tx:
            return [hit.name for hit in await tx.search.contacts(text)]

    assert await names("moreno") == ["Chris Moreno"], "any case"
    assert await names("+1 650-555") == ["Chris Moreno"], "a number as people type it"
    assert await names("7911") == ["Dana Okafor"]
    assert await names("us.1349") == ["Eli"]
    assert await names("WHOLE") == ["Dana Okafor"], "a tag"
    assert await names("0%") == ["100% Real"], "% is a character, not a wildcard"
    assert await names("_") == [], "_ is a character, not a wildcard"
    async with store.read() as tx:
        [hit] = await tx.search.contacts("chris")
    assert (hit.address, hit.tags) == ("16505551234", ("vip",))


async def test_search_finds_message_text_newest_first(store: Store, clock: FrozenClock) -> None:
    await add(store, "16505551234", "Chris")
    await add(store, "447911123456", "Dana")
    await receive(store, "16505551234", "Where is my Jacket order?", clock.now())
    clock.advance(minutes=1)
    await receive(store, "447911123456", "the jacket fits, thanks", clock.now())
    await receive(store, "447911123456", "ok", clock.now())

    async def found(text: str) -> list[tuple[str, str]]:
        async with store.read() as tx:
            return [(hit.address, hit.text) for hit in await tx.search.messages(text)]

    assert await found("JACKET") == [
        ("447911123456", "the jacket fits, thanks"),
        ("16505551234", "Where is my Jacket order?"),
    ]
    assert await found("ket or") == [("16505551234", "Where is my Jacket order?")]
    assert await found("ok") == [("447911123456", "ok")], "shorter than three characters"
    assert await found("parcel") == []


async def test_notes_follow_a_contact_merged_into_another(store: Store, clock: FrozenClock) -> None:
    chris = await add(store, "16505551234", "Chris")
    pablo = await add(store, None, "Pablo", user_id="US.13491208655302741918")
    spanish = DeskEntry(kind=EntryKind.NOTE, author=ANN, text="prefers Spanish", at=clock.now())
    called = DeskEntry(kind=EntryKind.NOTE, author=ANN, text="called back", at=clock.now())
    note = await store.write(lambda tx: tx.desk_log.add(chris, spanish))
    other = await store.write(lambda tx: tx.desk_log.add(pablo, called))

    async def link(tx: Tx) -> int:
        # Meta says the user id and the number are one person.
        contact = await tx.contacts.change_number(pablo, "16505551234", Consent(ConsentSource.API))
        return contact.id

    kept = await store.write(link)
    gone = chris if kept == pablo else pablo
    async with store.read() as tx:
        assert await tx.desk_log.entries(kept) == [note, other]
        assert await tx.desk_log.entries(gone) == []

"""The SQLite store: migrations, pragmas, group commit, and the append-only ledger."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine.clock import FrozenClock
from engine.models import ConsentSource, MessageStatus
from engine.store import AlreadyExists, Store, Tx, open_store
from engine.store.contacts import Consent, ImportedContact, NewContact
from engine.store.sqlite.migrate import available

API = Consent(ConsentSource.API, actor="test")


@pytest.mark.sqlite_only
async def test_a_new_database_gets_every_migration_once(tmp_path: Path, clock: FrozenClock) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    for _ in range(2):
        store = await open_store(url, clock=clock)
        await store.close()
    with sqlite3.connect(tmp_path / "a.db") as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [m.version for m in available()]
    assert journal == "wal"


@pytest.mark.sqlite_only
async def test_foreign_keys_are_enforced(store: Store) -> None:
    async def orphan_tag(tx: Tx) -> None:
        await tx.contacts.add_tags(999, ["vip"])

    with pytest.raises(sqlite3.IntegrityError):
        await store.write(orphan_tag)


async def test_a_failing_job_leaves_no_trace_and_its_neighbours_commit(store: Store) -> None:
    async def create(tx: Tx, wa_id: str, fail: bool) -> None:
        await tx.contacts.create(NewContact(wa_id=wa_id, marketing_opt_in=True), API)
        if fail:
            raise RuntimeError("boom")

    results = await asyncio.gather(
        store.write(lambda tx: create(tx, "16505551001", False)),
        store.write(lambda tx: create(tx, "16505551002", True)),
        store.write(lambda tx: create(tx, "16505551003", False)),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    async with store.read() as tx:
        present = [
            await tx.contacts.get(w) is not None
            for w in ("16505551001", "16505551002", "16505551003")
        ]
    assert present == [True, False, True]


async def test_concurrent_writes_all_commit(store: Store) -> None:
    async def put(i: int) -> None:
        await store.write(lambda tx: tx.settings.put(f"key{i}", str(i)))

    await asyncio.gather(*(put(i) for i in range(500)))
    async with store.read() as tx:
        values = [await tx.settings.get(f"key{i}") for i in (0, 250, 499)]
    assert values == ["0", "250", "499"]


@pytest.mark.sqlite_only
async def test_the_consent_ledger_cannot_be_rewritten(tmp_path: Path, store: Store) -> None:
    contact = await store.write(
        lambda tx: tx.contacts.create(NewContact(wa_id="16505551234", marketing_opt_in=True), API)
    )
    assert contact.marketing_opt_in
    with sqlite3.connect(tmp_path / "store.db") as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE consent_events SET marketing_opt_in = 0")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM consent_events")


async def test_set_opt_in_records_changes_only(store: Store, clock: FrozenClock) -> None:
    contact = await store.write(
        lambda tx: tx.contacts.create(NewContact(wa_id="16505551234", marketing_opt_in=True), API)
    )
    clock.advance(minutes=1)
    stop = Consent(ConsentSource.KEYWORD, actor=None, note="STOP")
    first = await store.write(lambda tx: tx.contacts.set_opt_in(contact.id, False, stop))
    again = await store.write(lambda tx: tx.contacts.set_opt_in(contact.id, False, stop))
    async with store.read() as tx:
        history = await tx.contacts.consent_history(contact.id)
        stored = await tx.contacts.get("16505551234")
    assert (first, again) == (True, False)
    assert stored is not None
    assert stored.marketing_opt_in is False
    assert [(e.marketing_opt_in, e.source) for e in history] == [
        (True, ConsentSource.API),
        (False, ConsentSource.KEYWORD),
    ]
    assert history[1].note == "STOP"
    assert history[1].at > history[0].at


async def test_a_contact_is_found_by_phone_or_user_id_and_learns_the_other(store: Store) -> None:
    inbound = Consent(ConsentSource.INBOUND)
    by_user, created = await store.write(
        lambda tx: tx.contacts.get_or_create(
            NewContact(user_id="US.13491208655302741918", marketing_opt_in=True), inbound
        )
    )
    both, created_again = await store.write(
        lambda tx: tx.contacts.get_or_create(
            NewContact(
                wa_id="16505551234", user_id="US.13491208655302741918", marketing_opt_in=True
            ),
            inbound,
        )
    )
    assert (created, created_again) == (True, False)
    assert by_user.wa_id is None
    assert by_user.address == "US.13491208655302741918"
    assert both.id == by_user.id
    assert both.wa_id == "16505551234"
    with pytest.raises(AlreadyExists):
        await store.write(
            lambda tx: tx.contacts.create(
                NewContact(wa_id="16505551234", marketing_opt_in=True), API
            )
        )


async def test_import_batch_creates_updates_and_records_consent(store: Store) -> None:
    existing = await store.write(
        lambda tx: tx.contacts.create(
            NewContact(wa_id="16505551001", marketing_opt_in=True, name="Old", tags=["a"]), API
        )
    )
    rows = [
        ImportedContact(wa_id="16505551001", name="New", marketing_opt_in=False, tags=["b"]),
        ImportedContact(wa_id="16505551002", name=None, marketing_opt_in=None, tags=["b"]),
    ]
    imported = Consent(ConsentSource.IMPORT, actor="test")
    counts = await store.write(
        lambda tx: tx.contacts.import_batch(rows, default_opt_in=True, consent=imported)
    )
    repeat = await store.write(
        lambda tx: tx.contacts.import_batch(rows, default_opt_in=True, consent=imported)
    )
    async with store.read() as tx:
        updated = await tx.contacts.get("16505551001")
        created = await tx.contacts.get("16505551002")
        ledger = await tx.contacts.consent_history(existing.id)
    assert (counts.created, counts.updated, counts.unchanged) == (1, 1, 0)
    assert (repeat.created, repeat.updated, repeat.unchanged) == (0, 0, 2)
    assert updated is not None
    assert created is not None
    assert (updated.name, updated.marketing_opt_in, updated.tags) == ("New", False, ("a", "b"))
    assert (created.marketing_opt_in, created.tags) == (True, ("b",))
    assert [e.source for e in ledger] == [ConsentSource.API, ConsentSource.IMPORT]


async def test_statuses_never_move_a_message_backwards(store: Store, clock: FrozenClock) -> None:
    from engine.ids import new_id
    from engine.models import Channel, Direction, Message

    contact = await store.write(
        lambda tx: tx.contacts.create(NewContact(wa_id="16505551234", marketing_opt_in=True), API)
    )
    message = Message(
        id=new_id(),
        direction=Direction.OUTBOUND,
        channel=Channel.API,
        contact_id=contact.id,
        contact=contact.address,
        kind="text",
        text="hello",
        status=MessageStatus.QUEUED,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    assert await store.write(lambda tx: tx.messages.insert(message))
    for status in (MessageStatus.SENT, MessageStatus.READ, MessageStatus.DELIVERED):
        clock.advance(seconds=1)

        async def change(tx: Tx, status: MessageStatus = status) -> None:
            await tx.messages.change_status(message.id, status, at=clock.now())

        await store.write(change)
    async with store.read() as tx:
        stored = await tx.messages.get(message.id)
    assert stored is not None
    assert stored.status is MessageStatus.READ
    assert [c.status for c in stored.history] == [
        MessageStatus.QUEUED,
        MessageStatus.SENT,
        MessageStatus.READ,
        MessageStatus.DELIVERED,
    ]


@pytest.mark.sqlite_only
async def test_the_writer_waits_for_another_process_s_write_lock_without_blocking(
    tmp_path: Path, store: Store
) -> None:
    # The writer runs its statements on the event loop; waiting for a lock must not.
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    write = asyncio.create_task(store.write(lambda tx: tx.settings.put("k", "v")))
    for _ in range(20):  # the loop keeps turning while the writer waits
        await asyncio.sleep(0)
    assert not write.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(write, 10)
    async with store.read() as tx:
        assert await tx.settings.get("k") == "v"

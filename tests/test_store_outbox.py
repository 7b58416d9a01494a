"""The outbox as a work queue, on a real SQLite file: claims, leases, outcomes."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from engine.clock import FrozenClock
from engine.models.contact import ConsentSource, Contact
from engine.models.content import TextContent
from engine.models.message import Channel, Failure, MessageStatus
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.send_rules import ContentKind, Options
from engine.store import Store, Tx, open_store
from engine.store.contacts import Consent, NewContact
from engine.store.messages import MessageFilter, PolicyInputs
from engine.store.outbox import Claimed, Failed, Released, Retry, Sent
from engine.store.sqlite.migrate import available

LEASE = timedelta(seconds=60)


async def make_contact(store: Store, clock: FrozenClock, wa_id: str) -> Contact:
    """A contact who wrote just now, so the 24-hour window is open for free text."""

    async def job(tx: Tx) -> Contact:
        contact = await tx.contacts.create(
            NewContact(wa_id=wa_id, marketing_opt_in=True), Consent(ConsentSource.API)
        )
        await tx.conversations.record_inbound(contact.id, clock.now())
        return contact

    return await store.write(job)


async def queue(
    store: Store, clock: FrozenClock, contact: Contact, channel: Channel, text: str
) -> str:
    async def job(tx: Tx) -> str:
        enqueued = await enqueue(
            tx, OutboundRequest(contact, channel, TextContent(body=text)), now=clock.now()
        )
        assert enqueued.message is not None
        return enqueued.message.id

    return await store.write(job)


async def claim(
    store: Store, clock: FrozenClock, owner: str = "w1", limit: int = 10
) -> list[Claimed]:
    now = clock.now()
    return await store.write(
        lambda tx: tx.outbox.claim(owner, now=now, lease_until=now + LEASE, limit=limit)
    )


async def record(store: Store, clock: FrozenClock, owner: str, *outcomes: object) -> None:
    await store.write(lambda tx: tx.outbox.record(owner, list(outcomes), now=clock.now()))  # type: ignore[arg-type]


async def status(store: Store, message_id: str) -> MessageStatus:
    async with store.read() as tx:
        message = await tx.messages.get(message_id)
    assert message is not None
    return message.status


@pytest.fixture
async def people(store: Store, clock: FrozenClock) -> list[Contact]:
    return [await make_contact(store, clock, f"1650555{n:04d}") for n in range(3)]


async def test_replies_go_before_api_before_bulk(
    store: Store, clock: FrozenClock, people: list[Contact]
) -> None:
    bulk = await queue(store, clock, people[0], Channel.BROADCAST, "sale")
    api = await queue(store, clock, people[1], Channel.API, "receipt")
    reply = await queue(store, clock, people[2], Channel.BOT, "hi")
    claimed = await claim(store, clock)
    assert [c.message_id for c in claimed] == [reply, api, bulk]
    assert [c.priority for c in claimed] == [0, 1, 2]
    assert all(c.attempts == 1 and not c.reclaimed for c in claimed)
    assert {await status(store, c.message_id) for c in claimed} == {MessageStatus.SENDING}
    assert await claim(store, clock) == [], "claimed rows are not claimed twice"


async def test_one_contact_one_message_at_a_time_in_order(
    store: Store, clock: FrozenClock, people: list[Contact]
) -> None:
    first = await queue(store, clock, people[0], Channel.BROADCAST, "one")
    second = await queue(store, clock, people[0], Channel.BOT, "two")
    [claimed] = await claim(store, clock)
    assert claimed.message_id == first, "a later reply does not overtake the contact's queue"
    assert await claim(store, clock) == []

    retry_at = clock.now() + timedelta(seconds=4)
    await record(store, clock, "w1", Retry(first, retry_at, "Rate limit hit", {"code": 130429}))
    assert await status(store, first) is MessageStatus.QUEUED
    assert await claim(store, clock) == [], "the second waits for the first"
    clock.advance(seconds=4)
    [again] = await claim(store, clock)
    assert (again.message_id, again.attempts) == (first, 2)
    await record(store, clock, "w1", Sent(first, "wamid.A", 2))
    [then] = await claim(store, clock)
    assert then.message_id == second


async def test_an_expired_lease_is_retried_and_counted_but_never_one_with_a_wamid(
    store: Store, clock: FrozenClock, people: list[Contact]
) -> None:
    lost = await queue(store, clock, people[0], Channel.API, "lost")
    acknowledged = await queue(store, clock, people[1], Channel.API, "acked")
    assert len(await claim(store, clock, owner="dead")) == 2
    # Meta's status for one of them arrives, naming our id in biz_opaque_callback_data.
    adopted = await store.write(
        lambda tx: tx.outbox.adopt_wamid(acknowledged, "wamid.B", at=clock.now())
    )
    assert adopted
    assert await status(store, acknowledged) is MessageStatus.SENT

    clock.advance(seconds=59)
    assert await claim(store, clock, owner="alive") == [], "the lease still holds"
    clock.advance(seconds=2)
    async with store.read() as tx:
        assert await tx.outbox.has_due(clock.now())
    [reclaimed] = await claim(store, clock, owner="alive")
    assert (reclaimed.message_id, reclaimed.reclaimed, reclaimed.attempts) == (lost, True, 2)

    # The dead worker's late outcomes no longer apply; a wamid always does.
    failure = Failure(code="131026", reason="Message Undeliverable")
    await record(store, clock, "dead", Failed(lost, failure))
    assert await status(store, lost) is MessageStatus.SENDING
    await record(store, clock, "alive", Sent(lost, "wamid.C", 2))
    async with store.read() as tx:
        state = await tx.outbox.state(lost)
        report = await tx.outbox.report_counts(MessageFilter())
        message = await tx.messages.get(lost)
    assert state is not None
    assert state.ambiguous_attempts == 1
    assert report == {"sent": 2, "ambiguous": 1}
    assert message is not None
    assert message.wamid == "wamid.C"
    assert not await store.write(
        lambda tx: tx.outbox.adopt_wamid(lost, "wamid.other", at=clock.now())
    ), "a message keeps its first wamid"


async def test_failed_and_released_outcomes(
    store: Store, clock: FrozenClock, people: list[Contact]
) -> None:
    doomed = await queue(store, clock, people[0], Channel.API, "x")
    spaced = await queue(store, clock, people[1], Channel.API, "y")
    await claim(store, clock)
    failure = Failure(code="131051", reason="Unsupported message type")
    await record(
        store,
        clock,
        "w1",
        Failed(doomed, failure, {"attempt": 1}),
        Released(spaced, clock.now() + timedelta(seconds=6)),
    )
    async with store.read() as tx:
        failed = await tx.messages.get(doomed)
        released = await tx.outbox.state(spaced)
    assert failed is not None
    assert failed.failure == failure
    assert [h.status for h in failed.history] == [MessageStatus.QUEUED, MessageStatus.FAILED]
    assert released is not None
    assert released.attempts == 0, "a release is not an attempt"
    clock.advance(seconds=6)
    [again] = await claim(store, clock)
    assert (again.message_id, again.attempts) == (spaced, 1)


async def test_an_idempotency_key_is_unique(
    store: Store, clock: FrozenClock, people: list[Contact]
) -> None:
    async def job(tx: Tx) -> str | None:
        request = OutboundRequest(
            people[0], Channel.API, TextContent(body="x"), idempotency_key="k-1"
        )
        enqueued = await enqueue(tx, request, now=clock.now())
        assert enqueued.message is not None
        return await tx.outbox.find_by_idempotency_key("k-1")

    first = await store.write(job)
    assert first is not None
    with pytest.raises(Exception, match=r"(?i)unique"):
        await store.write(job)


@pytest.mark.sqlite_only
async def test_rows_queued_before_the_rule_inputs_were_kept_get_them_when_migrated(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A database of the previous version with messages waiting: the migration gives them
    the inputs the other tables remember (template category, broadcast toggle, the
    agent's confirmation), so the sender asks the rule again for them too."""
    path = tmp_path / "old.db"
    at = "2026-03-02T09:00:00.000000Z"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for migration in available():
            if migration.version >= 7:
                continue
            db.executescript(migration.sql)
            db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.name, at),
            )
        db.executemany(
            "INSERT INTO contacts (id, wa_id, marketing_opt_in, created_at, updated_at)"
            " VALUES (?, ?, 0, ?, ?)",
            [(n, f"1650555000{n}", at, at) for n in range(1, 5)],
        )
        db.execute(
            "INSERT INTO templates VALUES ('new_arrivals', 'en_US', 'MARKETING', '{}', ?, ?)",
            (at, at),
        )
        db.execute(
            "INSERT INTO broadcasts (id, name, template, category, audience, opted_in_only,"
            " state, send_at, total, will_send, excluded_opted_out, quality_risk, created_at,"
            " updated_at) VALUES ('b1', 'Spring', '{}', 'MARKETING', '{}', 0, 'sending', ?,"
            " 1, 1, 0, 0, ?, ?)",
            (at, at, at),
        )
        db.execute("INSERT INTO broadcast_recipients VALUES ('b1', 2, 'm2')")
        db.execute(
            "INSERT INTO compose_messages VALUES ('m3', 'ann@example.com', 'ann@example.com', ?)",
            (at,),
        )
        marketing = '{"name": "new_arrivals", "language": "en_US", "params": []}'
        db.executemany(
            "INSERT INTO messages (id, direction, channel, contact_id, kind, template, status,"
            " created_at, updated_at, recipient, next_attempt_at)"
            " VALUES (?, 'outbound', ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
            [
                ("m1", "api", 1, "template", marketing, at, at, "16505550001", at),
                ("m2", "broadcast", 2, "template", marketing, at, at, "16505550002", at),
                ("m3", "compose", 3, "template", marketing, at, at, "16505550003", at),
                ("m4", "api", 4, "text", None, at, at, "16505550004", at),
            ],
        )

    store = await open_store(f"sqlite:///{path}", clock=clock)
    try:
        claimed = await claim(store, clock)
    finally:
        await store.close()

    inputs = {c.message_id: (c.channel, c.policy, c.opted_in) for c in claimed}
    assert inputs == {
        "m1": (Channel.API, PolicyInputs(ContentKind.MARKETING, Options()), False),
        "m2": (
            Channel.BROADCAST,
            PolicyInputs(ContentKind.MARKETING, Options(opted_in_only=False)),
            False,
        ),
        "m3": (
            Channel.COMPOSE,
            PolicyInputs(ContentKind.MARKETING, Options(confirmed_opted_out=True)),
            False,
        ),
        "m4": (Channel.API, PolicyInputs(ContentKind.FREE_FORM, Options()), False),
    }

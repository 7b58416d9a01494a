"""Work queues on PostgreSQL claimed by several workers at once.

Each claimer is a task of its own whose jobs run on a pooled connection of their own,
side by side, as separate sender processes would: every row is claimed exactly once,
and of each contact's outbox queue only the head.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from engine.clock import FrozenClock
from engine.ids import new_ids
from engine.models.contact import ConsentSource
from engine.models.message import Channel, MessageStatus
from engine.send_rules import ContentKind, Options
from engine.store import Store, Tx, open_store
from engine.store.contacts import Consent, NewContact
from engine.store.messages import MessageFilter, PolicyInputs
from engine.store.outbox import BatchMessage, Claimed, MessageBatch, Sent
from tests.databases import database_url

pytestmark = pytest.mark.postgres

CLAIMERS = 8
CLAIM_LIMIT = 20
CONTACTS = 400
DEEPEST_QUEUE = 12
LEASE = timedelta(seconds=60)

T = TypeVar("T")


@pytest.fixture
async def pooled_store(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Store]:
    """A store with a connection for every claimer."""
    store = await open_store(
        database_url(tmp_path / "claims.db"), clock=clock, pool_size=CLAIMERS + 2
    )
    yield store
    await store.close()


async def make_contacts(store: Store, count: int) -> dict[int, str]:
    """``count`` contacts: their ids and addresses."""

    async def job(tx: Tx) -> dict[int, str]:
        made: dict[int, str] = {}
        for n in range(count):
            contact = await tx.contacts.create(
                NewContact(marketing_opt_in=True, wa_id=f"1650{n:07d}"), Consent(ConsentSource.API)
            )
            made[contact.id] = f"1650{n:07d}"
        return made

    return await store.write(job)


async def fill_queues(
    store: Store, clock: FrozenClock, contacts: dict[int, str]
) -> dict[int, list[str]]:
    """Queue from 1 to DEEPEST_QUEUE messages per contact; each contact's message ids in
    queue order."""
    depth = {contact_id: 1 + n % DEEPEST_QUEUE for n, contact_id in enumerate(contacts)}
    queues: dict[int, list[str]] = {contact_id: [] for contact_id in contacts}
    for position in range(DEEPEST_QUEUE):
        members = [contact_id for contact_id in contacts if depth[contact_id] > position]
        messages = [
            BatchMessage(message_id, contact_id, contacts[contact_id], MessageStatus.QUEUED)
            for contact_id, message_id in zip(members, new_ids(len(members)), strict=True)
        ]
        batch = MessageBatch(
            channel=Channel.API,
            kind="text",
            text="hello",
            template=None,
            payload={"type": "text", "body": "hello"},
            policy=PolicyInputs(ContentKind.FREE_FORM, Options()),
            priority=1,
            created_at=clock.now(),
            phone_number_id=None,
            messages=messages,
        )
        await store.write(functools.partial(add_batch, batch=batch))
        for message in messages:
            queues[message.contact_id].append(message.message_id)
    return queues


async def add_batch(tx: Tx, *, batch: MessageBatch) -> None:
    await tx.outbox.add_batch(batch)


async def record(tx: Tx, *, outcomes: list[Sent], now: datetime) -> None:
    # Sent applies whoever holds the lease.
    await tx.outbox.record("anyone", outcomes, now=now)


async def drain(claimers: int, claim: Callable[[str], Awaitable[Sequence[T]]]) -> list[T]:
    """Let ``claimers`` tasks claim at once until each finds nothing left; everything
    they claimed.

    A claimer that finds nothing may have passed over rows another claim had locked;
    that claim commits them, and its claimer tries again before it stops.
    """
    start = asyncio.Event()
    taken: list[T] = []

    async def claimer(owner: str) -> None:
        await start.wait()
        while batch := await claim(owner):
            taken.extend(batch)

    tasks = [asyncio.create_task(claimer(f"w{n}")) for n in range(claimers)]
    await asyncio.sleep(0)
    start.set()
    await asyncio.gather(*tasks)
    return taken


async def test_concurrent_claimers_take_every_row_once_and_only_heads_of_queues(
    pooled_store: Store, clock: FrozenClock
) -> None:
    store = pooled_store
    contacts = await make_contacts(store, CONTACTS)
    queues = await fill_queues(store, clock, contacts)
    total = sum(len(queue) for queue in queues.values())
    assert total > 2500

    async def claim(owner: str) -> list[Claimed]:
        now = clock.now()
        return await store.write(
            lambda tx: tx.outbox.claim(owner, now=now, lease_until=now + LEASE, limit=CLAIM_LIMIT)
        )

    async def record_sent(claimed: list[Claimed]) -> None:
        sent = [Sent(c.message_id, f"wamid.{c.message_id}", c.attempts) for c in claimed]
        chunks = [sent[start : start + 200] for start in range(0, len(sent), 200)]
        now = clock.now()
        await asyncio.gather(
            *(store.write(functools.partial(record, outcomes=chunk, now=now)) for chunk in chunks)
        )

    # The heads are claimed by a worker that stops: their leases lapse, and the claimers
    # take them over, each once, counted as ambiguous.
    dead = await claim_all_as(store, clock, "dead")
    heads = {queue[0] for queue in queues.values()}
    assert {c.message_id for c in dead} == heads
    clock.advance(seconds=LEASE.total_seconds() + 1)

    claimed_count: Counter[str] = Counter()
    for position in range(DEEPEST_QUEUE):
        heads = {queue[position] for queue in queues.values() if len(queue) > position}
        claimed = await drain(CLAIMERS, claim)
        taken = Counter(c.message_id for c in claimed)
        assert max(taken.values()) == 1, "a row claimed twice"
        assert set(taken) == heads, "exactly the head of every contact's queue"
        assert all(c.reclaimed == (position == 0) for c in claimed)
        claimed_count.update(taken)
        await record_sent(claimed)

    assert sum(claimed_count.values()) == total
    async with store.read() as tx:
        counts = await tx.outbox.report_counts(MessageFilter(limit=total))
        first = await tx.outbox.state(next(iter(queues.values()))[0])
        second = await tx.outbox.state(queues[max(queues, key=lambda c: len(queues[c]))][1])
    assert counts == {"sent": total, "ambiguous": CONTACTS}
    assert first is not None
    assert (first.attempts, first.ambiguous_attempts) == (2, 1), "taken over once"
    assert second is not None
    assert (second.attempts, second.ambiguous_attempts) == (1, 0)


async def claim_all_as(store: Store, clock: FrozenClock, owner: str) -> list[Claimed]:
    now = clock.now()
    return await store.write(
        lambda tx: tx.outbox.claim(owner, now=now, lease_until=now + LEASE, limit=CONTACTS * 2)
    )

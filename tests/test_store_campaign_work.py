"""The campaigns' due-work table on a real SQLite file: claimed with a lease like the outbox,
so two workers never hold one item, and an item whose worker stopped comes back."""

from __future__ import annotations

from datetime import timedelta

from engine.clock import FrozenClock
from engine.store import Store
from engine.store.campaign_work import WorkItem, WorkKind

LEASE = timedelta(seconds=60)


async def claim(store: Store, clock: FrozenClock, owner: str) -> list[WorkItem]:
    now = clock.now()
    return await store.write(
        lambda tx: tx.campaign_work.claim(owner, now=now, lease_until=now + LEASE, limit=10)
    )


async def schedule(store: Store, subject: str, after: timedelta, clock: FrozenClock) -> None:
    due = clock.now() + after
    await store.write(
        lambda tx: tx.campaign_work.schedule(
            WorkKind.SEQUENCE_STEP, subject, due, step=0, version=1
        )
    )


async def test_due_items_go_to_one_worker_earliest_first(store: Store, clock: FrozenClock) -> None:
    await schedule(store, "later", timedelta(seconds=30), clock)
    await schedule(store, "b", timedelta(seconds=-1), clock)
    await schedule(store, "a", timedelta(seconds=-2), clock)

    first = await claim(store, clock, "w1")
    assert [item.subject for item in first] == ["a", "b"]
    assert [item.attempts for item in first] == [1, 1]
    assert (first[0].step, first[0].version) == (0, 1)
    assert await claim(store, clock, "w2") == [], "held by w1"

    clock.advance(seconds=30)  # within w1's lease
    assert [item.subject for item in await claim(store, clock, "w2")] == ["later"]


async def test_a_lease_that_expires_hands_the_item_to_another_worker(
    store: Store, clock: FrozenClock
) -> None:
    await schedule(store, "a", timedelta(0), clock)
    [item] = await claim(store, clock, "w1")
    async with store.read() as tx:
        assert await tx.campaign_work.held("w1", item.id) is not None
        assert await tx.campaign_work.held("w2", item.id) is None

    clock.advance(seconds=59)
    extended = clock.now() + LEASE
    held = await store.write(lambda tx: tx.campaign_work.held("w1", item.id, lease_until=extended))
    assert held is not None
    clock.advance(seconds=30)
    assert await claim(store, clock, "w2") == [], "the lease was extended"

    clock.advance(seconds=31)  # w1 stopped: its lease ran out
    [again] = await claim(store, clock, "w2")
    assert (again.id, again.attempts) == (item.id, 2)
    async with store.read() as tx:
        assert await tx.campaign_work.held("w1", item.id) is None, "w1 must not go on"


async def test_rescheduling_releases_and_a_failure_waits_and_cancel_removes(
    store: Store, clock: FrozenClock
) -> None:
    await schedule(store, "a", timedelta(0), clock)
    [item] = await claim(store, clock, "w1")
    # Handling failed: due again in a minute, and anyone may take it then.
    retry_at = clock.now() + timedelta(minutes=1)
    await store.write(lambda tx: tx.campaign_work.retry_later("w1", item.id, retry_at, "boom"))
    assert await claim(store, clock, "w2") == []
    clock.advance(minutes=1)
    [retried] = await claim(store, clock, "w2")

    # The next step: rescheduling the same subject replaces its time and frees it.
    await schedule(store, "a", timedelta(hours=1), clock)
    async with store.read() as tx:
        found = await tx.campaign_work.get(WorkKind.SEQUENCE_STEP, "a")
        assert found is not None
        assert (found.id, found.due_at, found.attempts) == (
            retried.id,
            clock.now() + timedelta(hours=1),
            0,
        )
        assert await tx.campaign_work.held("w2", retried.id) is None
        assert await tx.campaign_work.next_due() == clock.now() + timedelta(hours=1)

    await store.write(lambda tx: tx.campaign_work.cancel(WorkKind.SEQUENCE_STEP, "a"))
    async with store.read() as tx:
        assert await tx.campaign_work.get(WorkKind.SEQUENCE_STEP, "a") is None
        assert await tx.campaign_work.next_due() is None

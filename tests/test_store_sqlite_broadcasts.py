"""The broadcasts repository on a real SQLite file: audience pages by contact id that never
grow with the table, and queued messages held, released and skipped a chunk at a time."""

from __future__ import annotations

from datetime import timedelta

from engine.campaigns import broadcasts
from engine.campaigns.worker import CampaignConfig, CampaignWorker
from engine.catalogue import load_templates
from engine.clock import FrozenClock
from engine.models.campaign import AudienceSpec, Broadcast
from engine.models.contact import ConsentSource
from engine.models.content import TemplateContent
from engine.models.message import Failure, MessageStatus
from engine.store import Store, Tx
from engine.store.broadcasts import AudienceQuery
from engine.store.contacts import Consent, ImportedContact
from engine.store.sqlite.broadcasts import HELD, WINDOW_PAGES
from tests.conftest import FIXTURES

CONTENT = TemplateContent(name="new_arrivals", language="en_US", params=("friend",))


async def contacts(store: Store, count: int, tagged: set[int]) -> None:
    async def load(tx: Tx) -> None:
        for template in load_templates(FIXTURES / "templates.yaml"):
            await tx.templates.put(template)
        await tx.contacts.import_batch(
            [
                ImportedContact(
                    wa_id=f"1650555{n:04d}",
                    name=None,
                    marketing_opt_in=True,
                    tags=("vip",) if n in tagged else (),
                )
                for n in range(count)
            ],
            default_opt_in=True,
            consent=Consent(ConsentSource.IMPORT),
        )

    await store.write(load)


async def test_pages_walk_the_audience_in_windows_and_say_when_it_is_done(
    store: Store,
) -> None:
    limit = 3
    span = limit * WINDOW_PAGES
    tagged = {1, 2, 5, 6, 7, 30, 31, span * 2 + 10}
    await contacts(store, span * 3, tagged)
    query = AudienceQuery(tags=("vip",))
    seen: list[int] = []
    pages = 0
    after = 0
    async with store.read() as tx:
        while True:
            page = await tx.broadcasts.audience_page(query, after=after, limit=limit)
            pages += 1
            assert len(page.members) <= limit
            seen += [member.contact_id for member in page.members]
            if page.done:
                break
            assert page.cursor > after
            after = page.cursor
    # contact ids start at 1: wa_id index n has id n + 1
    assert seen == sorted(n + 1 for n in tagged)
    assert pages >= 4  # a full page stops early; an empty window still moves on


async def vip_broadcast(store: Store, clock: FrozenClock, count: int) -> Broadcast:
    """A broadcast to ``count`` contacts, all tagged vip, due now."""
    await contacts(store, count, set(range(count)))
    now = clock.now()
    created, _ = await broadcasts.count_and_create(
        store,
        name="b",
        content=CONTENT,
        audience=AudienceSpec(tags=("vip",)),
        opted_in_only=True,
        send_at=now,
        now=now,
    )
    return created


async def planned_broadcast(store: Store, clock: FrozenClock, count: int) -> str:
    created = await vip_broadcast(store, clock, count)
    await CampaignWorker(store, clock, CampaignConfig()).run_once()
    return created.id


async def next_attempts(store: Store, broadcast_id: str) -> list[str | None]:
    async with store.read() as tx:
        rows = await tx.broadcasts.report(broadcast_id)
        states = [await tx.outbox.state(row.message_id) for row in rows]
    return [
        None if s is None or s.next_attempt_at is None else s.next_attempt_at.isoformat()[:4]
        for s in states
    ]


async def test_queued_messages_are_held_released_and_skipped_a_chunk_at_a_time(
    store: Store, clock: FrozenClock
) -> None:
    broadcast_id = await planned_broadcast(store, clock, 5)
    assert await next_attempts(store, broadcast_id) == ["2026"] * 5

    first = await store.write(lambda tx: tx.broadcasts.hold_queued(broadcast_id, after="", limit=2))
    assert first is not None
    assert await next_attempts(store, broadcast_id) == [HELD[:4]] * 2 + ["2026"] * 3
    second = await store.write(
        lambda tx: tx.broadcasts.hold_queued(broadcast_id, after=first, limit=2)
    )
    assert second is not None
    last = await store.write(
        lambda tx: tx.broadcasts.hold_queued(broadcast_id, after=second, limit=2)
    )
    assert last is None, "fewer than a chunk were left"
    assert await next_attempts(store, broadcast_id) == [HELD[:4]] * 5

    later = clock.now() + timedelta(hours=1)
    assert (
        await store.write(
            lambda tx: tx.broadcasts.release_held(broadcast_id, later, after="", limit=10)
        )
        is None
    )
    assert await next_attempts(store, broadcast_id) == ["2026"] * 5

    cancelled = Failure(code="cancelled", reason="cancelled")
    await store.write(
        lambda tx: tx.broadcasts.skip_queued(
            broadcast_id, cancelled, clock.now(), after="", limit=3
        )
    )
    async with store.read() as tx:
        counts = await tx.broadcasts.counts(broadcast_id)
        rows = await tx.broadcasts.report(broadcast_id)
        history = await tx.messages.get(rows[0].message_id)
    assert counts == {"skipped": 3, "queued": 2}
    assert history is not None
    assert [h.status for h in history.history] == [MessageStatus.QUEUED, MessageStatus.SKIPPED]


async def test_a_batch_prepared_before_the_broadcast_moved_on_is_planned_afresh(
    store: Store, clock: FrozenClock
) -> None:
    created = await vip_broadcast(store, clock, 7)
    now = clock.now()
    settings = broadcasts.BroadcastSettings(batch_size=3)
    lease_until = now + timedelta(minutes=1)
    [item] = await store.write(
        lambda tx: tx.campaign_work.claim("w", now=now, lease_until=lease_until, limit=1)
    )
    async with store.read() as tx:
        stale = await broadcasts.prepare_batch(
            tx, created, after=created.planned_until, settings=settings, now=now
        )

    async def plan(prepared: broadcasts.PreparedBatch | None) -> broadcasts.Planned:
        return await store.write(
            lambda tx: broadcasts.plan_batch(
                tx,
                item=item,
                owner="w",
                settings=settings,
                now=now,
                lease_until=lease_until,
                last_turn=False,
                prepared=prepared,
            )
        )

    assert (await plan(None)).queued == 3  # another turn planned the first page meanwhile
    assert (await plan(stale)).queued == 3, "the stale page is not written again"
    assert (await plan(None)).queued == 1
    async with store.read() as tx:
        rows = await tx.broadcasts.report(created.id)
    assert sorted(row.contact_id for row in rows) == list(range(1, 8)), "each contact once"

"""The campaign worker: claims due work (broadcast planning, sequence timers) like the
sender claims the outbox, handles each item in store jobs of its own, and watches the
broadcasts being sent (the quality guard, and completion).

Time comes from the injected clock; the worker looks for due work every
``poll_seconds`` and whenever :meth:`CampaignWorker.wake` is called. Each look is a round
of :func:`engine.background.keep_running`: one that fails (the database locked or away)
is logged and tried again with a backoff. A stop lets the round under way finish, up to
``stop_grace`` seconds; the leases of items it did not get to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from engine.background import Health, keep_running, stop_within
from engine.campaigns import broadcasts, sequences
from engine.campaigns.broadcasts import BroadcastSettings
from engine.clock import Clock
from engine.ids import new_id
from engine.models.campaign import BroadcastState
from engine.store import Store
from engine.store.announcements import Topic
from engine.store.campaign_work import WorkItem, WorkKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    broadcasts: BroadcastSettings = field(default_factory=BroadcastSettings)
    poll_seconds: float = 1.0
    lease: timedelta = timedelta(seconds=60)
    claim_limit: int = 32
    batches_per_turn: int = 10
    """Batches a broadcast plans in a row before other due work gets a turn."""
    stop_grace: float = 8.0
    """How long a stop waits for the round under way."""


def retry_at(now: datetime, attempts: int) -> datetime:
    """When an item whose handling failed is tried again: doubling, at most an hour."""
    return now + timedelta(seconds=min(3600, 2**attempts))


class CampaignWorker:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: CampaignConfig,
        *,
        on_queued: Callable[[], None] | None = None,
        owner: str | None = None,
        health: Health | None = None,
    ) -> None:
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"
        self.task: asyncio.Task[None] | None = None
        self._store = store
        self._clock = clock
        self._config = config
        self._on_queued = on_queued
        self._wake = store.subscribe(Topic.CAMPAIGNS)  # announced by whoever makes work
        # A round may plan many broadcast batches: give it time before calling it stalled.
        health = health or Health()
        stall_after = max(2 * health.stall_seconds, 10 * config.poll_seconds)
        self._beat = health.heartbeat("campaigns", stall_after=stall_after)

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name=f"campaigns {self.owner}")
        return self.task

    def wake(self) -> None:
        """Work may be due (something was created, or time moved on)."""
        self._wake.set()

    async def stop(self) -> None:
        self._beat.stop()
        self._wake.set()
        if self.task is not None:
            await stop_within(self._beat, self.task, self._config.stop_grace)

    async def run(self) -> None:
        await keep_running(self._beat, self._round)

    async def _round(self) -> None:
        self._wake.clear()
        if await self.run_once() or self._beat.stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._config.poll_seconds)

    async def run_once(self) -> int:
        """Handle the work due now and watch the sending broadcasts; how many items."""
        now = self._clock.now()
        items = await self._store.write(
            lambda tx: tx.campaign_work.claim(
                self.owner,
                now=now,
                lease_until=now + self._config.lease,
                limit=self._config.claim_limit,
            )
        )
        for item in items:
            try:
                await self._handle(item)
            except Exception as error:
                log.exception("campaign work %s %s failed", item.kind, item.subject)
                await self._store.write(
                    lambda tx, item=item, error=error: tx.campaign_work.retry_later(  # type: ignore[misc]
                        self.owner,
                        item.id,
                        retry_at(self._clock.now(), item.attempts),
                        f"{type(error).__name__}: {error}",
                    )
                )
        await self._watch()
        return len(items)

    async def _handle(self, item: WorkItem) -> None:
        if item.kind is WorkKind.SEQUENCE_STEP:
            result = await self._store.write(
                partial(sequences.run_step, item=item, owner=self.owner, now=self._clock.now())
            )
            if result.queued:
                self._queued()
            return
        turns = self._config.batches_per_turn
        prepared = await self._prepare(item.subject, after=None)
        for turn in range(turns):
            now = self._clock.now()
            last_turn = turn == turns - 1
            writing = asyncio.ensure_future(
                self._store.write(
                    partial(
                        broadcasts.plan_batch,
                        item=item,
                        owner=self.owner,
                        settings=self._config.broadcasts,
                        now=now,
                        lease_until=now + self._config.lease,
                        last_turn=last_turn,
                        prepared=prepared,
                    )
                )
            )
            following = None
            try:
                if prepared is not None and not prepared.page.done and not last_turn:
                    # The commit of this batch is mostly waiting on the disk: read and
                    # decide the next one meanwhile.
                    following = await self._prepare(item.subject, after=prepared)
            finally:
                planned = await writing
            if planned.queued:
                self._queued()
            if planned.paused:
                await broadcasts.hold_queued(self._store, item.subject)
            if not planned.more:
                return
            prepared = following

    async def _prepare(
        self, broadcast_id: str, *, after: broadcasts.PreparedBatch | None
    ) -> broadcasts.PreparedBatch | None:
        """The broadcast's next batch: the one after ``after``, or where its planning
        stands; None when it is not there to plan."""
        async with self._store.read() as tx:
            if after is None:
                broadcast = await tx.broadcasts.get(broadcast_id)
                if broadcast is None:
                    return None
                cursor = broadcast.planned_until
            else:
                broadcast, cursor = after.broadcast, after.page.cursor
            return await broadcasts.prepare_batch(
                tx,
                broadcast,
                after=cursor,
                settings=self._config.broadcasts,
                now=self._clock.now(),
            )

    async def _watch(self) -> None:
        """The quality guard and the completion of the broadcasts being sent."""
        settings = self._config.broadcasts
        async with self._store.read() as tx:
            found = []
            for broadcast_id in await tx.broadcasts.ids_in_state(BroadcastState.SENDING):
                watched = await broadcasts.watch(tx, broadcast_id, settings)
                if watched is not None:
                    found.append(watched)
        for watched in found:
            paused = await self._store.write(
                partial(broadcasts.apply_watch, found=watched, now=self._clock.now())
            )
            if paused:
                await broadcasts.hold_queued(self._store, watched.broadcast_id)

    def _queued(self) -> None:
        if self._on_queued is not None:
            self._on_queued()

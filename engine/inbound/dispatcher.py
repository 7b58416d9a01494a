"""Hands stored inbound messages to the conversation handler, after the webhook answered.

The hand-off is durable: every stored message has a hand-off row, marked handled only
once the handler has returned, so a crash loses nothing; on start the dispatcher
picks up whatever was left pending. Messages of one contact are handled one at a
time in the order they were stored; different contacts are handled concurrently.

While an agent owns the conversation the bot handler is not called (the agents read
the message in the conversation). A handler that raises is retried later, in order;
after ``max_attempts`` the message is marked ``failed`` and the contact moves on.
Delivery is at least once: a crash after the handler returned but before the mark
was committed hands the message over again.

Any number of dispatchers, in any processes, share the work through the store: a
dispatcher *claims* the head pending hand-off of each contact with a lease (owner +
deadline, longer than ``handler_timeout``), and never one of a contact whose head
another dispatcher holds; the next message of a contact is claimed once its head is
marked handled. A dispatcher that stops gives back what it claimed and did not hand
over; one that dies loses its leases when they lapse. New hand-offs are announced
(:class:`~engine.store.announcements.Topic` ``INBOUND``), so a dispatcher in another
process than the webhook's wakes at once; it also polls.

Under load the store work is batched: one claim takes the heads of many contacts, and
the marks of handlers that returned meanwhile are committed together. The webhook hands
over what its store job left (:meth:`Dispatcher.hand_over`), so for those the claim is
all that is read; the message, contact and conversation are read only for the others
(stored before a restart, or by another process). The claim alone decides what is handed
over and when; what the webhook handed over only spares reading it back.

The claiming loop runs in rounds (:func:`engine.background.keep_running`): a round that
fails (the database locked or away) is logged and tried again with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import timedelta

from engine.background import Health, keep_running
from engine.clock import Clock
from engine.ids import new_id
from engine.inbound.handoff import ConversationHandler, Incoming
from engine.models.conversation import Owner
from engine.store import Store
from engine.store.announcements import Topic
from engine.store.inbound import Delivery, Handoff, Outcome

log = logging.getLogger(__name__)

HandlerSource = Callable[[], ConversationHandler | None]
UNMATCHED_STATUS_TTL = timedelta(days=30)
"""Statuses of messages we never sent (another system on the same number) are dropped."""
KNOWN_LIMIT = 4096
"""Hand-offs held from the webhook at most (a few KiB each, most handed on within
milliseconds); past it, as when the bot falls behind, they are read from the store."""

RETURNS_REMEMBERED = 20_000
"""Contacts whose last handler's return is remembered; the others count as having
returned when the record was last cleared, so what was read of them before is read again."""

_Queued = tuple[Delivery, int]
"""A delivery and the dispatcher's :meth:`Dispatcher.checkpoint` from before it was read."""


class _Marks:
    """Commits the outcomes of hand-offs, many in one store job."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._waiting: list[tuple[str, Outcome, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def mark(self, message_id: str, outcome: Outcome) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((message_id, outcome, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._commit([(message_id, outcome) for message_id, outcome, _ in batch])
            except Exception as error:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _commit(self, handled: list[tuple[str, Outcome]]) -> None:
        at = self._clock.now()
        await self._store.write(lambda tx: tx.inbound.mark_handled(handled, at))


class Dispatcher:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        handler: HandlerSource,
        *,
        concurrency: int = 64,
        batch: int = 256,
        max_attempts: int = 5,
        retry_delay: float = 5.0,
        handler_timeout: float = 60.0,
        poll_interval: float = 5.0,
        gather: float = 0.01,
        stop_grace: float = 10.0,
        lease_margin: float = 30.0,
        owner: str | None = None,
        health: Health | None = None,
    ) -> None:
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"
        self._store = store
        self._clock = clock
        self._handler = handler
        self._concurrency = concurrency
        self._batch = batch
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._handler_timeout = handler_timeout
        self._poll_interval = poll_interval
        self._gather = gather
        self._stop_grace = stop_grace
        # A handler never runs past its timeout, so a lease this long outlives it.
        self._lease = timedelta(seconds=handler_timeout + lease_margin)
        self._marks = _Marks(store, clock)
        self._wake = store.subscribe(Topic.INBOUND)
        self._claimed: set[str] = set()  # message ids leased to us and not marked handled
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._resting: dict[int, float] = {}  # contact -> monotonic time to retry at
        # What the webhook handed over, by message id, until it is marked handled.
        self._known: dict[str, _Queued] = {}
        # Handlers that returned, counted: per contact the count when its last one did.
        # A delivery read before its contact's last handler returned may be out of date.
        self._returned = 0
        self._returned_by_contact: dict[int, int] = {}
        self._returned_floor = 0  # at most this for a contact the dict has forgotten
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        health = health or Health()
        self._beat = health.heartbeat(
            "inbound", stall_after=max(health.stall_seconds, 3 * poll_interval)
        )
        self._fetched_at = 0.0
        self._pruned_at = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbound-dispatcher")

    @property
    def running(self) -> bool:
        """Whether this process hands messages over (a web-only process does not)."""
        return self._task is not None and not self._stopping

    def wake(self) -> None:
        """New hand-offs were committed."""
        self._wake.set()

    def checkpoint(self) -> int:
        """Take before the store job whose deliveries are passed to :meth:`hand_over`."""
        return self._returned

    def hand_over(self, deliveries: Iterable[Delivery], checkpoint: int) -> None:
        """Committed hand-offs, as the job that stored them saw them."""
        if len(self._known) >= KNOWN_LIMIT:
            # Full: some were handed over by another process and will never be popped
            # here. It only spares reads: start again.
            self._known.clear()
        for delivery in deliveries:
            if len(self._known) >= KNOWN_LIMIT:
                break
            self._known[delivery.handoff.message_id] = (delivery, checkpoint)
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking work; let handlers in flight finish (up to ``stop_grace``)."""
        self._stopping = True
        self._beat.stop()
        self._wake.set()
        if self._task is not None:
            await self._task
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=self._stop_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._claimed:
            # Another dispatcher may hand them over at once, rather than when leases lapse.
            claimed, owner = list(self._claimed), self.owner
            try:
                await self._store.write(lambda tx: tx.inbound.release(owner, claimed))
            except Exception:
                log.exception("could not give back %d hand-off(s)", len(claimed))

    async def settled(self) -> bool:
        """True when no hand-off waits and none is in flight."""
        if self._workers:
            return False
        async with self._store.read() as tx:
            return await tx.inbound.count_waiting() == 0

    async def _run(self) -> None:
        await self._prune()
        self._pruned_at = self._fetched_at = time.monotonic()
        await keep_running(self._beat, self._round)

    async def _round(self) -> None:
        self._wake.clear()  # before any await: a wake from now on is not lost
        # Under load every webhook wakes the loop; reading at most every ``gather``
        # seconds lets one read take many hand-offs instead of one read each.
        since = time.monotonic() - self._fetched_at
        if since < self._gather:
            await asyncio.sleep(self._gather - since)
            if self._stopping:
                return
        self._fetched_at = time.monotonic()
        more = await self._assign()
        if time.monotonic() - self._pruned_at > 3600:
            await self._prune()
            self._pruned_at = time.monotonic()
        if not more and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    async def _assign(self) -> bool:
        """Start serving contacts with pending messages; True if a full batch came."""
        free = self._concurrency - len(self._workers)
        if free <= 0:
            return False
        moment = time.monotonic()
        self._resting = {c: at for c, at in self._resting.items() if at > moment}
        busy = set(self._workers) | set(self._resting)
        checkpoint = self._returned
        now = self._clock.now()
        owner, lease_until, limit = self.owner, now + self._lease, min(self._batch, free)
        handoffs = await self._store.write(
            lambda tx: tx.inbound.claim(
                owner, now=now, lease_until=lease_until, exclude=busy, limit=limit
            )
        )
        self._claimed.update(h.message_id for h in handoffs)
        unknown = [h.message_id for h in handoffs if h.message_id not in self._known]
        read: dict[str, Delivery] = {}
        if unknown:
            async with self._store.read() as tx:
                read = {d.handoff.message_id: d for d in await tx.inbound.deliveries_of(unknown)}
        by_contact: dict[int, list[_Queued]] = {}
        for handoff in handoffs:
            queued = self._queued(handoff, read, checkpoint)
            if queued is not None:
                by_contact.setdefault(handoff.contact_id, []).append(queued)
        for contact_id, queue in list(by_contact.items())[:free]:
            self._workers[contact_id] = asyncio.create_task(
                self._serve(contact_id, queue), name=f"inbound-contact-{contact_id}"
            )
        return len(handoffs) == limit and len(by_contact) < free

    def _queued(
        self, handoff: Handoff, read: dict[str, Delivery], checkpoint: int
    ) -> _Queued | None:
        known = self._known.get(handoff.message_id)
        if known is not None:
            held, taken = known
            if handoff.previous_owner not in (None, self.owner):
                # Another dispatcher handed the previous message over, maybe since the
                # webhook read this one: what its handler changed is read afresh.
                taken = -1
            return replace(held, handoff=handoff), taken  # attempts as stored
        delivery = read.get(handoff.message_id)
        # None: handled between the two reads
        return None if delivery is None else (delivery, checkpoint)

    async def _serve(self, contact_id: int, queue: list[_Queued]) -> None:
        try:
            for delivery, taken in queue:
                if self._stopping:
                    return
                if (
                    taken < 0
                    or self._returned_by_contact.get(contact_id, self._returned_floor) > taken
                ):
                    # A handler returned since it was read (the previous message of the
                    # queue, often) and may have changed who answers.
                    delivery = await self._refresh(delivery)
                if not await self._deliver(delivery):
                    return
        except Exception:
            log.exception("the inbound dispatcher failed serving contact %s", contact_id)
            self._rest(contact_id)
        finally:
            del self._workers[contact_id]
            self._wake.set()

    async def _refresh(self, delivery: Delivery) -> Delivery:
        async with self._store.read() as tx:
            conversation = await tx.conversations.get(delivery.handoff.contact_id)
            contact = await tx.contacts.get_by_id(delivery.handoff.contact_id)
        return Delivery(
            delivery.handoff,
            delivery.message,
            contact or delivery.contact,
            conversation,
            delivery.input,
        )

    def _rest(self, contact_id: int) -> None:
        self._resting[contact_id] = time.monotonic() + self._retry_delay
        asyncio.get_running_loop().call_later(self._retry_delay, self._wake.set)

    async def _deliver(self, delivery: Delivery) -> bool:
        """Hand one message over; False when the contact must wait for a retry."""
        handler = self._handler()
        message = delivery.message
        if delivery.conversation.owner is Owner.AGENT:
            outcome = Outcome.AGENT
        elif handler is None:
            outcome = Outcome.NO_HANDLER
        else:
            incoming = Incoming(
                message=message,
                contact=delivery.contact,
                conversation=delivery.conversation,
                input=delivery.input,
                new_contact=delivery.handoff.new_contact,
            )
            try:
                async with asyncio.timeout(self._handler_timeout):
                    try:
                        await handler.handle(incoming)
                    finally:
                        self._count_return(delivery.handoff.contact_id)
            except Exception:
                log.exception("the conversation handler failed on message %s", message.id)
                attempts = await self._store.write(lambda tx: tx.inbound.count_attempt(message.id))
                if attempts < self._max_attempts:
                    self._rest(delivery.handoff.contact_id)
                    return False
                log.error("gave up handing message %s over after %d attempts", message.id, attempts)
                outcome = Outcome.FAILED
            else:
                outcome = Outcome.BOT
        await self._marks.mark(message.id, outcome)
        self._known.pop(message.id, None)
        self._claimed.discard(message.id)
        return True

    def _count_return(self, contact_id: int) -> None:
        self._returned += 1
        if len(self._returned_by_contact) >= RETURNS_REMEMBERED:
            self._returned_by_contact.clear()
            self._returned_floor = self._returned - 1
        self._returned_by_contact[contact_id] = self._returned

    async def _prune(self) -> None:
        before = self._clock.now() - UNMATCHED_STATUS_TTL
        try:
            pruned = await self._store.write(lambda tx: tx.inbound.prune_unmatched_statuses(before))
        except Exception:
            log.exception("could not prune unmatched statuses")
            return
        if pruned:
            log.info("dropped %d statuses of messages this server never sent", pruned)

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from pydantic import ValidationError

from engine.clock import Clock
from engine.handler import ConversationHandler, Incoming
from engine.inbound.inputs import customer_input
from engine.models.conversation import Owner
from engine.models.customer_input import CustomerInput, InputKind
from engine.models.message import Message
from engine.store import Store
from engine.store.inbound import Handoff, Outcome
from engine.whatsapp.webhook import parse_message

log = logging.getLogger(__name__)

HandlerSource = Callable[[], ConversationHandler | None]
UNMATCHED_STATUS_TTL = timedelta(days=30)
"""Statuses of messages we never sent (another system on the same number) are dropped."""


def incoming_input(message: Message) -> CustomerInput:
    """The customer input of a stored inbound message, read back from its payload."""
    try:
        return customer_input(parse_message(message.payload or {}))
    except ValidationError:
        return CustomerInput(kind=InputKind.OTHER, text=message.text)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        handler: HandlerSource,
        *,
        concurrency: int = 64,
        batch: int = 50,
        max_attempts: int = 5,
        retry_delay: float = 5.0,
        handler_timeout: float = 60.0,
        poll_interval: float = 5.0,
        stop_grace: float = 10.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._handler = handler
        self._concurrency = concurrency
        self._batch = batch
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._handler_timeout = handler_timeout
        self._poll_interval = poll_interval
        self._stop_grace = stop_grace
        self._wake = asyncio.Event()
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._resting: dict[int, float] = {}  # contact -> monotonic time to retry at
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbound-dispatcher")

    def wake(self) -> None:
        """New hand-offs were committed."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking work; let handlers in flight finish (up to ``stop_grace``)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=self._stop_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def settled(self) -> bool:
        """True when no hand-off waits and none is in flight."""
        if self._workers:
            return False
        async with self._store.read() as tx:
            return await tx.inbound.count_waiting() == 0

    async def _run(self) -> None:
        await self._prune()
        pruned_at = time.monotonic()
        while not self._stopping:
            self._wake.clear()
            try:
                await self._assign()
            except Exception:  # the loop must outlive a bad moment of the store
                log.exception("the inbound dispatcher could not read pending hand-offs")
            if time.monotonic() - pruned_at > 3600:
                await self._prune()
                pruned_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    async def _assign(self) -> None:
        free = self._concurrency - len(self._workers)
        if free <= 0:
            return
        now = time.monotonic()
        self._resting = {c: at for c, at in self._resting.items() if at > now}
        busy = set(self._workers) | set(self._resting)
        async with self._store.read() as tx:
            contacts = await tx.inbound.contacts_waiting(exclude=busy, limit=free)
        for contact_id in contacts:
            self._workers[contact_id] = asyncio.create_task(
                self._serve(contact_id), name=f"inbound-contact-{contact_id}"
            )

    async def _serve(self, contact_id: int) -> None:
        try:
            while not self._stopping:
                async with self._store.read() as tx:
                    pending = await tx.inbound.waiting(contact_id, limit=self._batch)
                if not pending:
                    return
                for handoff in pending:
                    if self._stopping or not await self._deliver(handoff):
                        return
        except Exception:
            log.exception("the inbound dispatcher failed serving contact %s", contact_id)
            self._rest(contact_id)
        finally:
            del self._workers[contact_id]
            self._wake.set()

    def _rest(self, contact_id: int) -> None:
        self._resting[contact_id] = time.monotonic() + self._retry_delay
        asyncio.get_running_loop().call_later(self._retry_delay, self._wake.set)

    async def _deliver(self, handoff: Handoff) -> bool:
        """Hand one message over; False when the contact must wait for a retry."""
        async with self._store.read() as tx:
            conversation = await tx.conversations.get(handoff.contact_id)
            message = await tx.messages.get(handoff.message_id)
            contact = await tx.contacts.get_by_id(handoff.contact_id)
        handler = self._handler()
        if conversation.owner is Owner.AGENT:
            outcome = Outcome.AGENT
        elif handler is None:
            outcome = Outcome.NO_HANDLER
        else:
            assert message is not None
            assert contact is not None
            incoming = Incoming(
                message=message,
                contact=contact,
                conversation=conversation,
                input=incoming_input(message),
                new_contact=handoff.new_contact,
            )
            try:
                async with asyncio.timeout(self._handler_timeout):
                    await handler.handle(incoming)
            except Exception:
                log.exception("the conversation handler failed on message %s", message.id)
                attempts = await self._store.write(
                    lambda tx: tx.inbound.count_attempt(handoff.message_id)
                )
                if attempts < self._max_attempts:
                    self._rest(handoff.contact_id)
                    return False
                log.error("gave up handing message %s over after %d attempts", message.id, attempts)
                outcome = Outcome.FAILED
            else:
                outcome = Outcome.BOT
        at = self._clock.now()
        await self._store.write(lambda tx: tx.inbound.mark_handled(handoff.message_id, outcome, at))
        return True

    async def _prune(self) -> None:
        before = self._clock.now() - UNMATCHED_STATUS_TTL
        try:
            pruned = await self._store.write(lambda tx: tx.inbound.prune_unmatched_statuses(before))
        except Exception:
            log.exception("could not prune unmatched statuses")
            return
        if pruned:
            log.info("dropped %d statuses of messages this server never sent", pruned)

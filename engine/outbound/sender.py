"""The sender: claims due outbox rows and sends them through the Cloud API client.

One loop claims work (a short batch, under a lease) and starts a task per message.
A task waits for the contact's pair-rate slot and its business number's throughput
slot (replies first), posts Meta's send body, and hands its outcome to a flusher that
records outcomes in batches: ``sent`` with the wamid, a retry with exponential backoff
(throttling, 5xx, timeouts, up to ``max_tries``), or ``failed`` with Meta's code and
title (permanent errors at once; 131047 says the window is closed).

Crash safety, in order of events for one message:

1. the row is ``queued`` (committed by whoever enqueued it);
2. the claim commits ``sending`` with a lease before the HTTP call starts;
3. the answer is recorded (``sent`` + wamid, retry, or failure) milliseconds later.

If the process dies between 2 and 3 the lease expires and another claim retries the
row, counting it in ``ambiguous_attempts``: that is the one case where Meta may have
got the message and we cannot know. Every send carries our message id in
``biz_opaque_callback_data``; Meta echoes it in the message's status notifications, and
:func:`engine.outbound.recovery.message_for_status` records the wamid from them, so a
message Meta accepted before the crash is normally ``sent`` again before the lease
expires and is not sent twice. A row that has a wamid is never claimed again.

A graceful :meth:`Sender.stop` puts back what it had not posted yet (no attempt
counted), waits for the HTTP calls in flight, and records everything.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from engine.clock import Clock
from engine.ids import new_id
from engine.models.content import OutboundContent, TemplateContent
from engine.models.message import Failure
from engine.models.template import Template
from engine.outbound.limits import NumberRateLimiter, PairLimiter
from engine.outbound.metrics import OutboundMetrics
from engine.store import Store, Tx
from engine.store.outbox import Claimed, Failed, Outcome, Released, Retry, Sent
from engine.whatsapp.client import CloudApiClient
from engine.whatsapp.errors import PAIR_RATE_LIMIT, SendError
from engine.whatsapp.send import build_send_body, wire_json

log = logging.getLogger(__name__)

_CONTENT = TypeAdapter[OutboundContent](OutboundContent)


async def on_wamid_recorded(tx: Tx, message_id: str, wamid: str) -> None:
    """Called in the transaction that records a message's wamid.

    MERGE: the lead connects this to
    ``engine.inbound.statuses.replay_unmatched_statuses(tx, message_id, wamid)`` (written
    in parallel on the inbound branch), so statuses Meta sent before we stored the wamid
    are applied now. Until then it does nothing.
    """
    return


@dataclass(frozen=True, slots=True)
class SenderConfig:
    default_phone_number_id: str
    rate_limit: int | None = 80
    """Messages per second per business number; None: no limit (benchmarks only)."""
    rate_limits: dict[str, int] = field(default_factory=dict)
    max_tries: int = 6
    backoff: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=10)
    backoff_jitter: float = 0.2
    """Each wait is shortened by up to this fraction, so retries of a burst spread out."""
    concurrency: int = 200
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 0.25
    pair_interval: timedelta = timedelta(seconds=6)
    pair_burst: int = 10
    horizon_seconds: float = 0.25
    """Claim about this much work ahead of the rate limit, so replies are never stuck
    behind a long queue of claimed bulk messages."""
    template_cache_seconds: float = 5.0

    def rate_for(self, phone_number_id: str) -> int | None:
        return self.rate_limits.get(phone_number_id, self.rate_limit)


@dataclass(slots=True)
class SenderStats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    reclaimed: int = 0


class TemplateCache:
    """Catalogue entries for building template bodies, re-read after a few seconds."""

    def __init__(self, store: Store, ttl_seconds: float) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[Template, float]] = {}

    async def get(self, name: str, language: str) -> Template | None:
        key = (name, language)
        entry = self._entries.get(key)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        async with self._store.read() as tx:
            template = await tx.templates.get(name, language)
        if template is not None:
            self._entries[key] = (template, time.monotonic() + self._ttl)
        return template


class _Unbuildable(Exception):
    pass


class Sender:
    def __init__(
        self,
        store: Store,
        client: CloudApiClient,
        clock: Clock,
        config: SenderConfig,
        *,
        metrics: OutboundMetrics | None = None,
        owner: str | None = None,
        on_outcomes: Callable[[list[Outcome]], None] | None = None,
    ) -> None:
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"
        self.stats = SenderStats()
        self.task: asyncio.Task[None] | None = None
        self._store = store
        self._client = client
        self._clock = clock
        self._config = config
        self._metrics = metrics or OutboundMetrics()
        self._on_outcomes = on_outcomes
        self._templates = TemplateCache(store, config.template_cache_seconds)
        self._limiters: dict[str, NumberRateLimiter] = {}
        self._pairs = PairLimiter(config.pair_interval, config.pair_burst)
        self._tasks: dict[asyncio.Task[None], Claimed] = {}
        self._posting: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []
        self._outcomes_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._stopping = False
        rate = config.rate_limit
        ahead = config.concurrency if rate is None else math.ceil(rate * config.horizon_seconds)
        self._max_waiting = max(4, min(config.concurrency, ahead))
        self._min_claim = max(1, min(config.concurrency, self._max_waiting) // 4)

    # -- lifetime -----------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name=f"sender {self.owner}")
        return self.task

    def wake(self) -> None:
        """New work may be due (a message was just enqueued)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, put back what was not posted, finish and record the rest."""
        self._stopping = True
        self._wake.set()
        self._progress.set()
        if self.task is not None:
            await self.task

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_loop(), name="sender-flush")
        try:
            await self._claim_loop()
            await self._drain()
        except asyncio.CancelledError:
            # Killed: like a crash, nothing more is recorded; leases will expire.
            for task in self._tasks:
                task.cancel()
            raise
        finally:
            flusher.cancel()
            for limiter in self._limiters.values():
                limiter.close()

    # -- claiming -----------------------------------------------------------------

    @property
    def _waiting(self) -> int:
        return len(self._tasks) - len(self._posting)

    async def _claim_loop(self) -> None:
        woken = True
        while not self._stopping:
            budget = min(
                self._config.concurrency - len(self._tasks), self._max_waiting - self._waiting
            )
            if budget <= 0 or (self._tasks and budget < self._min_claim):
                self._progress.clear()
                await self._progress.wait()
                continue
            if not woken:
                now = self._clock.now()
                async with self._store.read() as tx:
                    due = await tx.outbox.has_due(now)
                if not due:
                    woken = await self._idle()
                    continue
            self._wake.clear()
            batch = await self._claim(budget)
            if batch:
                for claimed in batch:
                    self._start(claimed)
                woken = True
                continue
            woken = await self._idle()

    async def _idle(self) -> bool:
        """Wait for a wake-up or the poll interval; True when woken."""
        try:
            await asyncio.wait_for(self._wake.wait(), self._config.poll_seconds)
        except TimeoutError:
            return False
        return True

    async def _claim(self, limit: int) -> list[Claimed]:
        now = self._clock.now()
        lease_until = now + self._config.lease
        batch = await self._store.write(
            lambda tx: tx.outbox.claim(self.owner, now=now, lease_until=lease_until, limit=limit)
        )
        self.stats.claimed += len(batch)
        reclaimed = sum(claimed.reclaimed for claimed in batch)
        if reclaimed:
            self.stats.reclaimed += reclaimed
            self._metrics.ambiguous.inc(reclaimed)
            log.warning(
                "retrying %d message(s) whose sender stopped during the send; "
                "Meta may have received them already",
                reclaimed,
            )
        return batch

    def _start(self, claimed: Claimed) -> None:
        task = asyncio.create_task(self._send(claimed))
        self._tasks[task] = claimed
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._posting.discard(task)
        self._progress.set()

    # -- sending ------------------------------------------------------------------

    def _limiter(self, phone_number_id: str) -> NumberRateLimiter:
        limiter = self._limiters.get(phone_number_id)
        if limiter is None:
            limiter = NumberRateLimiter(self._config.rate_for(phone_number_id))
            self._limiters[phone_number_id] = limiter
        return limiter

    async def _send(self, claimed: Claimed) -> None:
        phone_number_id = claimed.phone_number_id or self._config.default_phone_number_id
        pair = (phone_number_id, claimed.recipient)
        task = asyncio.current_task()
        assert task is not None
        try:
            wait = self._pairs.wait(pair, self._clock.now())
            if wait:
                # Meta's pair limit: space the burst instead of letting Meta fail it.
                self._emit(Released(claimed.message_id, self._clock.now() + wait))
                return
            body = await self._body(claimed)
            await self._limiter(phone_number_id).acquire(claimed.priority)
            self._pairs.note(pair, self._clock.now())
            self._posting.add(task)
            self._progress.set()
            started = time.perf_counter()
            accepted = await self._client.send(phone_number_id, body)
            self._metrics.send_seconds.observe(time.perf_counter() - started)
            self._emit(Sent(claimed.message_id, accepted.wamid, claimed.attempts))
        except SendError as error:
            self._emit(self._after_error(claimed, error))
        except _Unbuildable as problem:
            failure = Failure(code="invalid_message", reason=str(problem))
            self._emit(Failed(claimed.message_id, failure, {"attempt": claimed.attempts}))
        except asyncio.CancelledError:
            if self._stopping and task not in self._posting:
                self._emit(Released(claimed.message_id, self._clock.now()))
            raise
        except Exception as error:  # a fault of ours: retry rather than lose the message
            log.exception("sending message %s failed", claimed.message_id)
            unexpected = SendError(
                "internal_error", f"{type(error).__name__}: {error}", ambiguous=True
            )
            self._emit(self._after_error(claimed, unexpected, retryable=True))

    async def _body(self, claimed: Claimed) -> bytes:
        try:
            content = _CONTENT.validate_python(claimed.payload)
        except ValidationError as error:
            raise _Unbuildable(f"the stored content is not a message: {error}") from None
        template = None
        if isinstance(content, TemplateContent):
            template = await self._templates.get(content.name, content.language)
        try:
            body = build_send_body(
                claimed.recipient, content, template=template, reference=claimed.message_id
            )
        except ValidationError as error:
            raise _Unbuildable(f"cannot build the Cloud API body: {error}") from None
        return wire_json(body)

    def _after_error(
        self, claimed: Claimed, error: SendError, *, retryable: bool | None = None
    ) -> Outcome:
        details = {"attempt": claimed.attempts, **error.as_details()}
        can_retry = error.retryable if retryable is None else retryable
        if error.ambiguous:
            self._metrics.ambiguous.inc()
        if can_retry and claimed.attempts < self._config.max_tries:
            delay = self._backoff(claimed.attempts)
            if error.retry_after:
                delay = max(delay, timedelta(seconds=error.retry_after))
            if error.code == PAIR_RATE_LIMIT:
                delay = max(delay, self._config.pair_interval)
            self._metrics.retries.labels(str(error.code)).inc()
            return Retry(
                claimed.message_id,
                self._clock.now() + delay,
                error.reason,
                details,
                ambiguous=error.ambiguous,
            )
        failure = error.failure()
        if can_retry:
            failure = Failure(
                code=failure.code,
                reason=f"{failure.reason} (gave up after {claimed.attempts} tries)",
            )
        self._metrics.failed.labels(failure.code).inc()
        return Failed(claimed.message_id, failure, details)

    def _backoff(self, attempts: int) -> timedelta:
        nominal: timedelta = min(
            self._config.backoff * (2 ** (attempts - 1)), self._config.backoff_max
        )
        return nominal * (1 - self._config.backoff_jitter * random.random())

    # -- recording ----------------------------------------------------------------

    def _emit(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._outcomes_ready.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        now = self._clock.now()

        async def record(tx: Tx) -> None:
            await tx.outbox.record(self.owner, outcomes, now=now)
            for outcome in outcomes:
                if isinstance(outcome, Sent):
                    await on_wamid_recorded(tx, outcome.message_id, outcome.wamid)

        for attempt in range(5):
            try:
                await self._store.write(record)
                break
            except Exception:
                log.exception("recording %d send outcome(s) failed", len(outcomes))
                await asyncio.sleep(0.05 * 2**attempt)
        else:
            log.error("gave up recording %d outcome(s); their leases will expire", len(outcomes))
            return
        for outcome in outcomes:
            match outcome:
                case Sent():
                    self.stats.sent += 1
                    self._metrics.sent.inc()
                case Failed():
                    self.stats.failed += 1
                case Retry():
                    self.stats.retried += 1
                case Released():
                    self.stats.released += 1
        if self._on_outcomes is not None:
            self._on_outcomes(outcomes)
        # A recorded outcome frees the head of its contact's queue: the next may go.
        self._wake.set()

    async def _drain(self) -> None:
        waiting = [task for task in self._tasks if task not in self._posting]
        for task in waiting:
            task.cancel()
        pending = list(self._tasks)
        if pending:
            timeout = self._client_timeout() + 1.0
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()
        await self._flush()

    def _client_timeout(self) -> float:
        return self._client.timeout_seconds

"""The sender: claims due outbox rows and sends them through the Cloud API client.

A claim loop moves a batch of due rows to ``sending`` under a lease and puts them in a
priority queue served by ``concurrency`` workers. A worker waits for the customer's
pair-rate slot (a burst is put back until its slot) and the business number's
throughput slot (replies first), posts the request body made at enqueue, and hands the
outcome to a flusher. The flusher records a batch of outcomes, and claims the next
batch, in one transaction: ``sent`` with the wamid, a retry with exponential backoff
(throttling, 5xx, timeouts, unreadable answers, up to ``max_tries``), or ``failed`` with
Meta's code and title (permanent errors at once; 131047 says the window is closed).

Before anything else a worker asks :func:`engine.send_rules.decide` again, with the inputs
kept on the row at enqueue and the contact's opt-in and window as the claim read them: a
message the rules no longer let go (the contact opted out while it waited, or free form
whose 24-hour window closed) is never posted and is recorded as enqueue would have
recorded it then (``skipped`` or ``failed``, with the rule's code and reason); a notice
the rules attach is kept with the ``sent`` status. A row without its stored rule inputs
is not posted either: it fails with ``send_rules_inputs_missing``; nor is a row without
its request body (queued before bodies were stored): it fails with
``request_body_missing``.

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
counted), waits for the HTTP calls in flight up to ``stop_grace`` seconds, puts back
those still unanswered then as ambiguous tries (Meta may have got them), and records
everything.

The claim loop, the flusher and the renewal of the business numbers run in rounds
(:func:`engine.background.keep_running`): a round that fails (the database locked,
full or away) is logged, counted and tried again with a backoff; outcomes that could not
be recorded are kept and recorded by a later round, and nothing is claimed meanwhile.

With several workers on one database each business number is sent for by one of them
at a time: the sender holds numbers through leases (:mod:`engine.store.number_leases`),
renewed every third of ``number_lease``, and claims only rows of the numbers it holds,
so its rate limiter and pair limiter see everything the number sends. Numbers nobody
holds (their worker died, or they are new) are taken at the next renewal. Queued
messages are announced (``Topic.OUTBOX``): a sender wakes at once whichever process
queued them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.background import Backoff, Health, keep_running
from engine.clock import Clock
from engine.identity import is_user_id
from engine.ids import new_id
from engine.models.marketing_limits import NO_LIMITS, MarketingLimits
from engine.models.message import Failure
from engine.outbound.limits import NumberRateLimiter, PairLimiter
from engine.outbound.marketing import limits_in_force
from engine.outbound.marketing_limit import DEFAULT_MARKETING_LIMIT, MarketingLimitRetry
from engine.outbound.metrics import OutboundMetrics
from engine.outbound.statuses import replay_unmatched_statuses_of
from engine.outbound.verdicts import recorded_as
from engine.send_rules import (
    INPUTS_MISSING,
    ContentKind,
    Decision,
    Verdict,
    decide,
    quiet_until,
    window_at,
)
from engine.store import Store, Tx
from engine.store.announcements import Topic
from engine.store.outbox import (
    Claimed,
    Deferred,
    Failed,
    Held,
    Numbers,
    Outcome,
    Released,
    Retry,
    Sent,
    Waiting,
    Withheld,
)
from engine.whatsapp.client import CloudApiClient
from engine.whatsapp.send_errors import (
    PAIR_RATE_LIMIT,
    MarketingNotOnboarded,
    SendError,
    limits_marketing,
)

log = logging.getLogger(__name__)

_FLUSH_BATCH = 256
_EXPIRY_CHECK_SECONDS = 1.0
_FLUSH_LINGER_SECONDS = 0.01
_FLUSH_IDLE_SECONDS = 1.0
"""An idle flusher looks up this often (a good round: it is alive)."""
_SHUTDOWN_FLUSH_TRIES = 5


NOT_ONBOARDED_NOTICE = "marketing_messages_not_onboarded"
"""Kept with the ``sent`` status of a MARKETING message that went through ``/messages``
because the business is not onboarded to the Marketing Messages API."""


async def on_wamids_recorded(tx: Tx, sent: list[Sent]) -> None:
    """Called in the transaction that records messages' wamids: statuses Meta sent
    before we stored them (they were kept aside) are applied now."""
    await replay_unmatched_statuses_of(tx, {o.wamid: o.message_id for o in sent})


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
    number_lease: timedelta = timedelta(seconds=10)
    """How long a business number stays this sender's without a renewal: a sender that
    dies hands its numbers on within this time."""
    stop_grace: float = 8.0
    """How long a stop waits for the HTTP calls in flight."""
    marketing_messages_api: bool = False
    """Post MARKETING templates to the Marketing Messages API (``/marketing_messages``)."""
    marketing_limit: MarketingLimitRetry = DEFAULT_MARKETING_LIMIT
    """When a message Meta held back with its per-user marketing limit (131049) goes again."""

    @property
    def numbers(self) -> list[str]:
        """The numbers this sender asks for from the start (others it takes when it finds
        due messages of theirs that nobody sends)."""
        return sorted({self.default_phone_number_id, *self.rate_limits})

    def rate_for(self, phone_number_id: str) -> int | None:
        return self.rate_limits.get(phone_number_id, self.rate_limit)


@dataclass(slots=True)
class SenderStats:
    looked: int = 0
    """Times the claim loop looked for due rows (a round, or a check that found none)."""
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    reclaimed: int = 0
    withheld: int = 0


REQUEST_BODY_MISSING = Failure(
    code="request_body_missing",
    reason="The message was queued before the exact request to Meta was stored with it, "
    "so it was not sent; send it again.",
)
"""A queued row without its request body (queued before bodies were stored at enqueue):
not sent, rather than built anew from content and a catalogue that may have changed."""


def kind_now(claimed: Claimed) -> ContentKind | None:
    """What the message is as the send rules see it now: a template's category is the
    catalogue's at this moment (Meta may have recategorised it since it was queued), the
    one kept at enqueue when the template is no longer in the catalogue."""
    if claimed.policy is None:
        return None
    kind = claimed.policy.kind
    if kind is ContentKind.FREE_FORM or claimed.template_category is None:
        return kind
    try:
        return ContentKind(claimed.template_category)
    except ValueError:
        return kind


def _asked_again(claimed: Claimed, now: datetime, limits: MarketingLimits) -> Decision:
    """The send rules asked again just before sending, with the contact's opt-in, window
    and MARKETING templates handed over as the claim read them, their quiet hours as kept
    on the row, and the template as the catalogue has it now. A row without the inputs
    they need (queued before they were kept) fails closed."""
    kind = kind_now(claimed)
    if claimed.policy is None or claimed.channel is None or kind is None:
        return INPUTS_MISSING
    cap = limits.frequency_cap
    return decide(
        claimed.channel,
        kind,
        opted_in=claimed.opted_in,
        window=window_at(claimed.last_inbound_at, now),
        options=claimed.policy.options,
        over_cap=cap is not None and cap.reached(claimed.marketing_sent),
        quiet_until=quiet_until(
            claimed.policy.options.quiet_hours,
            now,
            wa_id=claimed.wa_id,
            timezone=claimed.timezone,
        ),
        template_status=claimed.template_status,
        to_user_id=is_user_id(claimed.recipient),
    )


class Sender:
    """Claims due rows into a priority queue served by ``concurrency`` workers."""

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
        on_claim: Callable[[], Callable[[list[Claimed]], None]] | None = None,
        health: Health | None = None,
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
        self._on_claim = on_claim
        self._limiters: dict[str, NumberRateLimiter] = {}
        self._registered_rates: dict[str, int | None] = {}
        self._pairs = PairLimiter(config.pair_interval, config.pair_burst)
        self._ready: asyncio.PriorityQueue[tuple[int, int, Claimed]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._held: dict[asyncio.Task[None], Claimed] = {}  # taken by a worker, not posted
        self._in_flight: dict[asyncio.Task[None], Claimed] = {}  # posted, not answered
        self._posting = 0
        self._no_calls = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._outcomes_ready = asyncio.Event()
        self._wake = store.subscribe(Topic.OUTBOX)
        self._numbers = Numbers(frozenset(), config.default_phone_number_id)
        self._progress = asyncio.Event()
        self._stopping = False
        self._requested = 0  # rows asked for by claims under way
        self._flushing = asyncio.Lock()
        self._unrecordable = False
        self._limits = NO_LIMITS
        """The marketing limits in force as the last claim read them."""
        self._next_expiry_check = 0.0
        self._woken = True
        health = health or Health()
        stall, poll = health.stall_seconds, config.poll_seconds
        self._claims_beat = health.heartbeat("sender", stall_after=max(stall, 10 * poll))
        self._flush_beat = health.heartbeat(
            "sender_flusher", stall_after=max(stall, 3 * _FLUSH_IDLE_SECONDS)
        )
        renewal = config.number_lease.total_seconds() / 3
        self._numbers_beat = health.heartbeat("sender_numbers", stall_after=max(stall, 3 * renewal))
        rate = config.rate_limit
        # Claimed work waiting for a slot: enough that the HTTP calls never wait for a
        # claim (a claim is a committed write: milliseconds), little enough that a new
        # reply is not queued behind a long bulk backlog.
        # Without a rate limit (benchmarks) claim in big batches: each transaction costs
        # thread hand-offs and an fsync, whatever its size.
        ahead = (
            16 * config.concurrency if rate is None else math.ceil(rate * config.horizon_seconds)
        )
        self._max_waiting = max(4, ahead)
        self._min_claim = max(1, self._max_waiting // 2)

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
        self._claims_beat.stop()
        self._wake.set()
        self._progress.set()
        if self.task is not None:
            await self.task

    @property
    def numbers(self) -> frozenset[str]:
        """The business numbers this sender holds now."""
        return self._numbers.held

    async def run(self) -> None:
        try:
            await self._hold_numbers_once()
        except Exception:  # the renewals retry
            log.exception("could not take the business numbers' leases")
        holder = asyncio.create_task(self._hold_numbers(), name="sender-numbers")
        flusher = asyncio.create_task(self._flush_loop(), name="sender-flush")
        workers = [
            asyncio.create_task(self._work(), name="sender-worker")
            for _ in range(self._config.concurrency)
        ]
        try:
            await keep_running(self._claims_beat, self._claim_round)
            await self._drain(workers)
        finally:
            # Killed (cancelled) this is all that happens, like a crash: nothing more is
            # recorded, and the leases of what was claimed will expire.
            self._claims_beat.stop()
            self._flush_beat.stop()
            self._numbers_beat.stop()
            for worker in workers:
                worker.cancel()
            flusher.cancel()
            holder.cancel()
            for limiter in self._limiters.values():
                limiter.close()
        # Stopped cleanly: hand the numbers on now rather than when their leases lapse.
        owner = self.owner
        try:
            await self._store.write(lambda tx: tx.number_leases.release(owner))
        except Exception:
            log.exception("could not hand back the business numbers")

    # -- business numbers ---------------------------------------------------------

    async def _hold_numbers(self) -> None:
        every = self._config.number_lease.total_seconds() / 3

        async def renew() -> None:
            await asyncio.sleep(every)
            # The leases lapse if this keeps failing: another worker sends for them.
            await self._hold_numbers_once()

        await keep_running(self._numbers_beat, renew)

    async def _hold_numbers_once(self) -> None:
        now = self._clock.now()
        until = now + self._config.number_lease
        owner, wanted, default = self.owner, self._config.numbers, self._numbers.default

        async def job(tx: Tx) -> tuple[list[str], dict[str, int | None]]:
            # Every registered number is asked for, each paced at its own rate.
            rates = {n.phone_number_id: n.rate_limit for n in await tx.numbers.list()}
            held = await tx.number_leases.hold(
                owner, {*wanted, *rates}, now=now, until=until, default_number=default
            )
            return held, rates

        held, rates = await self._store.write(job)
        self._registered_rates = rates
        for number, limiter in list(self._limiters.items()):
            # Made again at the new rate once nothing waits on it (a later renewal).
            if limiter.rate != self._rate_for(number) and not limiter.waiting:
                limiter.close()
                del self._limiters[number]
        gained = set(held) - self._numbers.held
        lost = self._numbers.held - set(held)
        self._numbers = Numbers(frozenset(held), default)
        if gained:
            log.info("sending for business number(s) %s", ", ".join(sorted(gained)))
            self._wake.set()
        if lost:
            log.warning("another worker sends for %s now", ", ".join(sorted(lost)))

    # -- claiming -----------------------------------------------------------------

    @property
    def _waiting(self) -> int:
        return self._ready.qsize() + len(self._held)

    def _room(self) -> int:
        """How many rows to claim now; 0 while enough are waiting (or outcomes cannot
        be recorded: sending more would only make more of them)."""
        if self._stopping or self._unrecordable:
            return 0
        budget = self._max_waiting - self._waiting - self._requested
        return budget if budget >= self._min_claim else 0

    async def _claim_round(self) -> None:
        """Claim what is due, or wait (at most a poll interval) for room or for work."""
        limit = self._room()
        if not limit:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), self._config.poll_seconds)
            return
        self.stats.looked += 1
        if not self._woken:
            now = self._clock.now()
            async with self._store.read() as tx:
                due = await tx.outbox.has_due(now, self._numbers)
            if not due:
                self._woken = await self._idle()
                return
        self._wake.clear()
        self._woken = True  # a claim that fails is tried again without waiting
        batch = await self._round([], limit)
        self._woken = bool(batch) or await self._idle()

    async def _idle(self) -> bool:
        """Wait for a wake-up or the poll interval; True when woken."""
        try:
            await asyncio.wait_for(self._wake.wait(), self._config.poll_seconds)
        except TimeoutError:
            return False
        return True

    async def _round(self, outcomes: list[Outcome], limit: int) -> list[Claimed]:
        """One committed write: record ``outcomes`` and claim up to ``limit`` more rows,
        so under load the outbox costs one transaction per batch, not two."""
        now = self._clock.now()
        lease_until = now + self._config.lease
        # Expired leases only follow a crash: look for them now and then, not every batch.
        expired = bool(limit) and time.monotonic() >= self._next_expiry_check
        if expired:
            self._next_expiry_check = time.monotonic() + _EXPIRY_CHECK_SECONDS

        numbers = self._numbers

        async def job(tx: Tx) -> tuple[MarketingLimits, list[Claimed]]:
            if outcomes:
                await tx.outbox.record(self.owner, outcomes, now=now)
                await on_wamids_recorded(tx, [o for o in outcomes if isinstance(o, Sent)])
            if not limit or not numbers.held:
                return NO_LIMITS, []
            # Read with the claim, so the count and the cap it is held against agree.
            limits = await limits_in_force(tx)
            cap = limits.frequency_cap
            return limits, await tx.outbox.claim(
                self.owner,
                now=now,
                lease_until=lease_until,
                limit=limit,
                expired=expired,
                numbers=numbers,
                marketing_since=None if cap is None else now - cap.period,
            )

        self._requested += limit
        # Told when a claim starts and given what it took when it ends (the consent
        # simulation judges each send by the opt-in over that stretch).
        claimed_hook = self._on_claim() if self._on_claim is not None else None
        try:
            limits, batch = await self._store.write(job)
            if batch:
                self._limits = limits
        finally:
            self._requested -= limit
            # The claim loop may be waiting for room that only this round's request
            # took up (the flusher claims too): now there is room again.
            self._progress.set()
        if claimed_hook is not None:
            claimed_hook(batch)  # the claim's end, before any other await
        for claimed in batch:
            self._ready.put_nowait((claimed.priority, next(self._order), claimed))
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

    # -- sending ------------------------------------------------------------------

    def _rate_for(self, phone_number_id: str) -> int | None:
        """The number's own rate when it was registered with one, else the settings'."""
        registered = self._registered_rates.get(phone_number_id)
        return registered if registered is not None else self._config.rate_for(phone_number_id)

    def _limiter(self, phone_number_id: str) -> NumberRateLimiter:
        limiter = self._limiters.get(phone_number_id)
        if limiter is None:
            limiter = NumberRateLimiter(self._rate_for(phone_number_id))
            self._limiters[phone_number_id] = limiter
        return limiter

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            _, _, claimed = await self._ready.get()
            self._held[task] = claimed
            try:
                await self._send(claimed, task)
            except asyncio.CancelledError:
                if self._stopping and task in self._held:
                    self._emit(Released(claimed.message_id, self._clock.now()))
                elif self._stopping and task in self._in_flight:
                    # Cut after the stop's grace: posted, unanswered, so maybe received.
                    cut = SendError(
                        "shutdown", "the server stopped during the send", ambiguous=True
                    )
                    self._emit(self._after_error(claimed, cut, retryable=True))
                raise
            finally:
                self._held.pop(task, None)
                self._in_flight.pop(task, None)  # kept until here: a cut post is put back
                self._posted(None)

    def _posted(self, task: asyncio.Task[None] | None) -> None:
        """``task`` starts its HTTP call (None: a worker is done with its message)."""
        if task is not None:
            del self._held[task]
        if self._waiting <= self._max_waiting - self._min_claim:
            self._progress.set()

    async def _send(self, claimed: Claimed, task: asyncio.Task[None]) -> None:
        body = claimed.request_body
        if body is None:
            self._emit(Failed(claimed.message_id, REQUEST_BODY_MISSING))
            return
        decision = _asked_again(claimed, self._clock.now(), self._limits)
        if decision.verdict is Verdict.HOLD:
            # Inside the contact's quiet hours: back in the queue, due when they end.
            assert decision.hold_until is not None
            self._metrics.withheld.labels(decision.code or "hold").inc()
            self._emit(Held(claimed.message_id, decision.hold_until))
            return
        if decision.verdict is Verdict.WAIT and claimed.template is not None:
            # Meta paused or disabled the template: the message waits (not due) until
            # the template is approved again, which makes it due.
            self._emit(Waiting(claimed.message_id, claimed.template, decision.reason or ""))
            return
        if not decision.sends:
            # The contact opted out (or the window closed) while the message waited:
            # recorded as enqueue would have recorded it had that been so before.
            status, failure = recorded_as(decision)
            assert failure is not None, "a decision that does not send says why"
            self._metrics.withheld.labels(failure.code).inc()
            self._emit(Withheld(claimed.message_id, status, failure))
            return
        notice = decision.notice.code if decision.notice else None
        phone_number_id = claimed.phone_number_id or self._config.default_phone_number_id
        pair = (phone_number_id, claimed.recipient)
        try:
            now = self._clock.now()
            wait = self._pairs.wait(pair, now)
            if wait:
                # Meta's pair limit: space the burst instead of letting Meta fail it.
                self._emit(Released(claimed.message_id, now + wait))
                return
            limiter = self._limiter(phone_number_id)
            if limiter.rate:
                await limiter.acquire(claimed.priority)
                now = self._clock.now()
            self._pairs.note(pair, now)
            self._posted(task)
            self._posting += 1
            self._in_flight[task] = claimed
            started = time.perf_counter()
            marketing = self._config.marketing_messages_api and (
                kind_now(claimed) is ContentKind.MARKETING
            )
            try:
                try:
                    accepted = await self._client.send(phone_number_id, body, marketing=marketing)
                except MarketingNotOnboarded as refused:
                    # Meta has not onboarded the business to the Marketing Messages API:
                    # the message goes the ordinary way, and its history says so.
                    log.warning(
                        "message %s went through /messages: the business is not onboarded "
                        "to the Marketing Messages API (%s)",
                        claimed.message_id,
                        refused.reason,
                    )
                    notice = NOT_ONBOARDED_NOTICE
                    accepted = await self._client.send(phone_number_id, body)
            finally:
                self._posting -= 1
                if not self._posting:
                    self._no_calls.set()
            self._metrics.send_seconds.observe(time.perf_counter() - started)
            self._emit(Sent(claimed.message_id, accepted.wamid, claimed.attempts, notice))
        except SendError as error:
            self._emit(self._after_error(claimed, error))
        except Exception as error:  # a fault of ours: retry rather than lose the message
            log.exception("sending message %s failed", claimed.message_id)
            unexpected = SendError(
                "internal_error", f"{type(error).__name__}: {error}", ambiguous=True
            )
            self._emit(self._after_error(claimed, unexpected, retryable=True))

    def _after_error(
        self, claimed: Claimed, error: SendError, *, retryable: bool | None = None
    ) -> Outcome:
        details = {"attempt": claimed.attempts, **error.as_details()}
        if limits_marketing(error.code):
            deferral = self.deferral(claimed.deferrals, error.failure())
            if isinstance(deferral, Failure):
                self._metrics.failed.labels(deferral.code).inc()
                return Failed(claimed.message_id, deferral, details)
            return Deferred(claimed.message_id, deferral, error.failure())
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
        # The last try counts as ambiguous like the others: Meta may have got it.
        return Failed(claimed.message_id, failure, details, ambiguous=error.ambiguous)

    def deferral(self, deferrals: int, failure: Failure) -> datetime | Failure:
        """When a message Meta held back with its per-user marketing limit goes again, or
        the failure it ends with after the last try."""
        return self._config.marketing_limit.after(deferrals, failure, now=self._clock.now())

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
        await keep_running(self._flush_beat, self._flush_round)

    async def _flush_round(self) -> None:
        try:
            await asyncio.wait_for(self._outcomes_ready.wait(), _FLUSH_IDLE_SECONDS)
        except TimeoutError:
            return  # nothing to record: idle, and alive
        if self._posting and len(self._outcomes) < _FLUSH_BATCH:
            # Busy: let a few more answers come in, so one commit records them all.
            await asyncio.sleep(_FLUSH_LINGER_SECONDS)
        self._outcomes_ready.clear()
        await self._flush()

    async def _flush(self) -> None:
        async with self._flushing:  # one at a time, so a stop waits for the one under way
            await self._flush_now()

    async def _flush_now(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        try:
            await self._round(outcomes, self._room())
        except Exception:
            # Never drop outcomes: a lost wamid would send the message again when its
            # lease expires. Keep them for the next round, and claim nothing until then.
            self._outcomes = outcomes + self._outcomes
            self._outcomes_ready.set()
            self._unrecordable = True
            raise
        self._unrecordable = False
        sent = 0
        for outcome in outcomes:
            match outcome:
                case Sent():
                    sent += 1
                case Failed():
                    self.stats.failed += 1
                case Retry():
                    self.stats.retried += 1
                case Released():
                    self.stats.released += 1
                case Withheld() | Held() | Waiting():
                    self.stats.withheld += 1
                case Deferred():
                    self.stats.retried += 1
        self.stats.sent += sent
        self._metrics.sent.inc(sent)
        if self._on_outcomes is not None:
            self._on_outcomes(outcomes)
        # A recorded outcome frees the head of its contact's queue: the next may go.
        self._wake.set()

    async def _drain(self, workers: list[asyncio.Task[None]]) -> None:
        while not self._ready.empty():
            _, _, claimed = self._ready.get_nowait()
            self._emit(Released(claimed.message_id, self._clock.now()))
        for worker in list(self._held):
            worker.cancel()  # waiting for a slot: put back, not attempted
        if self._posting:
            self._no_calls.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._no_calls.wait(), self._config.stop_grace)
        for worker in workers:
            worker.cancel()  # still posting after the grace: put back as ambiguous
        await asyncio.gather(*workers, return_exceptions=True)
        backoff = Backoff()
        for attempt in range(1, _SHUTDOWN_FLUSH_TRIES + 1):
            try:
                await self._flush()
                return
            except Exception as error:
                count = len(self._outcomes)
                log.error("recording %d outcome(s) at shutdown failed: %s", count, error)
                await asyncio.sleep(backoff.after(attempt))
        log.error("gave up recording %d outcome(s) at shutdown", len(self._outcomes))

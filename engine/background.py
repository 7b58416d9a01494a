"""Background loops that never die silently, and the health of each.

Every background part (the sender's claim loop and flusher, integration callbacks, the
campaign worker, the inbound hand-off, flow wake-ups) runs its work in *rounds* through
:func:`keep_running`: a round that raises (the database is locked, full, restarting, or
a fault of ours) is logged with the part's name, counted, and tried again after a pause
that doubles from ``Backoff.first`` to ``Backoff.maximum`` and starts over after a good
round. The loop ends only when its part stops. A round that polls and finds nothing is
a good round: an idle part is healthy.

Each part keeps a :class:`Heartbeat` (last good round, failures in a row, its task),
listed in a process's :class:`Health`; ``/healthz`` reports a part that died (its task
ended without being stopped) or stalled (no good round for longer than its
``stall_after``), and ``/metrics`` shows each part's last good round and failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """The pause after a failed round, in seconds: doubling from ``first`` to ``maximum``."""

    first: float = 0.1
    maximum: float = 5.0

    def after(self, failures: int) -> float:
        return float(min(self.maximum, self.first * 2 ** max(0, failures - 1)))


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a part is not healthy."""

    part: str
    state: str
    """``died`` (its task ended) or ``stalled`` (no good round for too long)."""
    reason: str
    consecutive_failures: int
    last_success_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "reason": self.reason,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": (
                None
                if self.last_success_at is None
                else self.last_success_at.isoformat().replace("+00:00", "Z")
            ),
        }


class Heartbeat:
    """One background part's record: its last good round (monotonic and wall time), its
    failures in a row and the last error, and the task that runs it."""

    def __init__(self, name: str, *, stall_after: float, metrics: Metrics | None = None) -> None:
        self.name = name
        self.stall_after = stall_after
        self.last_success: float | None = None
        """``time.monotonic()`` of the last good round."""
        self.last_success_at: datetime | None = None
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.task: asyncio.Task[object] | None = None
        self.started: float | None = None
        self._stopping = asyncio.Event()
        self._stopped = False
        self._metrics = metrics

    # -- the loop's side ----------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """The part is stopping: its loop ends after the round under way, and at once if
        it is pausing after a failure."""
        self._stopping.set()

    def running_in(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.started = time.monotonic()
        task.add_done_callback(self._ended)

    def succeeded(self) -> None:
        if self.consecutive_failures:
            log.warning(
                "%s: working again after %d failed round(s)", self.name, self.consecutive_failures
            )
        self.last_success = time.monotonic()
        self.last_success_at = datetime.now(UTC)
        self.consecutive_failures = 0
        if self._metrics is not None:
            self._metrics.background_last_success.labels(self.name).set(
                self.last_success_at.timestamp()
            )

    def failed(self, error: BaseException, pause: float) -> None:
        self.consecutive_failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        if self._metrics is not None:
            self._metrics.background_failures.labels(self.name).inc()
        # The whole traceback once per run of failures; a line for each repeat.
        log.error(
            "%s: round failed (%d in a row), trying again in %.1f s: %s",
            self.name,
            self.consecutive_failures,
            pause,
            self.last_error,
            exc_info=error if self.consecutive_failures == 1 else None,
        )

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the part stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``, less if the part stops; whether it is set."""
        waiters = {
            asyncio.ensure_future(event.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return event.is_set()

    def _ended(self, task: asyncio.Task[object]) -> None:
        self._stopped = self._stopped or self.stopping
        if task.cancelled() or self._stopped:
            return
        error = task.exception()
        log.error(
            "%s: its task ended without being stopped: %s",
            self.name,
            "returned" if error is None else f"{type(error).__name__}: {error}",
            exc_info=error,
        )

    # -- the health check's side --------------------------------------------------

    def problem(self, now: float | None = None) -> Problem | None:
        """None while healthy (or not started, or stopped)."""
        if self.task is None or self.stopping:
            return None
        now = time.monotonic() if now is None else now
        if self.task.done():
            reason = "its task ended"
            if not self.task.cancelled() and self.task.exception() is not None:
                error = self.task.exception()
                reason += f": {type(error).__name__}: {error}"
            return self._problem("died", reason)
        since = self.last_success if self.last_success is not None else self.started
        assert since is not None
        quiet = now - since
        if quiet <= self.stall_after:
            return None
        reason = f"no successful round for {quiet:.0f} s (limit {self.stall_after:.0f} s)"
        if self.consecutive_failures:
            reason += f"; {self.consecutive_failures} failed in a row, last: {self.last_error}"
        return self._problem("stalled", reason)

    def _problem(self, state: str, reason: str) -> Problem:
        return Problem(self.name, state, reason, self.consecutive_failures, self.last_success_at)


class Health:
    """The heartbeats of one process's background parts."""

    def __init__(self, metrics: Metrics | None = None, *, stall_seconds: float = 30.0) -> None:
        self._metrics = metrics
        self.stall_seconds = stall_seconds
        """A part without a good round for this long is stalled (a part that may wait
        longer between rounds asks for more)."""
        self._beats: list[Heartbeat] = []

    def heartbeat(self, name: str, *, stall_after: float) -> Heartbeat:
        beat = Heartbeat(name, stall_after=stall_after, metrics=self._metrics)
        self._beats.append(beat)
        return beat

    @property
    def parts(self) -> list[Heartbeat]:
        """The parts started in this process."""
        return [beat for beat in self._beats if beat.task is not None]

    def problems(self) -> list[Problem]:
        now = time.monotonic()
        found = (beat.problem(now) for beat in self._beats)
        return [problem for problem in found if problem is not None]


async def keep_running(
    heartbeat: Heartbeat,
    one_round: Callable[[], Awaitable[object]],
    *,
    backoff: Backoff = Backoff(),
) -> None:
    """Run ``one_round`` again and again until ``heartbeat.stop()``; a round includes its
    own wait for work. A failed round is logged, counted and retried after a backoff."""
    task = asyncio.current_task()
    if task is not None and heartbeat.task is not task:
        heartbeat.running_in(task)
    while not heartbeat.stopping:
        try:
            await one_round()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            pause = backoff.after(heartbeat.consecutive_failures + 1)
            heartbeat.failed(error, pause)
            await heartbeat.pause(pause)
        else:
            heartbeat.succeeded()


async def stop_within(heartbeat: Heartbeat, task: asyncio.Task[None], grace: float) -> None:
    """Stop a part's loop: let the round under way finish, cancelled after ``grace``."""
    heartbeat.stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

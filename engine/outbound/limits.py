"""Pacing: the throughput of a business number, and the pair rate to one customer.

Both use GCRA (the generic cell rate algorithm): a *theoretical arrival time* moves
forward one interval per message, and a message may go once that time, less a small
tolerance, has come. Over any stretch of time the rate holds exactly; the tolerance
lets a late timer catch up instead of losing slots.

:class:`NumberRateLimiter` runs on the event loop's monotonic clock and hands out slots
in priority order (a reply to a customer overtakes a waiting broadcast).
:class:`PairLimiter` runs on the injected :class:`~engine.clock.Clock`: a message to a
customer who just got a burst is not failed but put back in the outbox until its slot.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

_MIN_TOLERANCE = 0.01  # seconds: more than a timer's usual lateness


class NumberRateLimiter:
    """At most ``rate`` acquisitions per second; ``None`` means no limit.

    >>> limiter = NumberRateLimiter(None)
    >>> asyncio.run(limiter.acquire())
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._interval = 1.0 / rate if rate else 0.0
        burst = burst if burst is not None else max(1, int((rate or 0) / 50))
        self._tolerance = max(self._interval * (burst - 1), _MIN_TOLERANCE)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tat = 0.0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, priority: int = 0) -> None:
        """Wait for a slot; lower ``priority`` values are served first."""
        if not self._interval:
            return
        now = self._monotonic()
        if not self._waiters and self._tat - self._tolerance <= now:
            self._tat = max(self._tat, now) + self._interval
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._hand_out(), name="rate-limiter")
        await future

    async def _hand_out(self) -> None:
        while self._waiters:
            now = self._monotonic()
            allowed_at = self._tat - self._tolerance
            if allowed_at > now:
                await self._sleep(allowed_at - now)
                continue
            _, _, future = heapq.heappop(self._waiters)
            if future.done():  # its task was cancelled while it waited
                continue
            self._tat = max(self._tat, now) + self._interval
            future.set_result(None)

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()


class PairLimiter:
    """Meta's pair rate: one message per ``interval`` to one customer, after a burst.

    >>> start = datetime(2026, 1, 1)
    >>> pair = PairLimiter(timedelta(seconds=6), burst=2)
    >>> for _ in range(2):
    ...     assert pair.wait("a", start) == timedelta(0)
    ...     pair.note("a", start)
    >>> pair.wait("a", start)
    datetime.timedelta(seconds=6)
    """

    def __init__(self, interval: timedelta, burst: int) -> None:
        self._interval = interval
        self._tolerance = interval * (burst - 1)
        self._tat: dict[object, datetime] = {}

    def wait(self, key: object, now: datetime) -> timedelta:
        """How long until a message to ``key`` may go (zero: now)."""
        tat = self._tat.get(key)
        if tat is None or not self._interval:
            return timedelta(0)
        return max(timedelta(0), tat - self._tolerance - now)

    def note(self, key: object, now: datetime) -> None:
        """A message to ``key`` goes now."""
        if not self._interval:
            return
        tat = self._tat.get(key)
        self._tat[key] = max(tat or now, now) + self._interval
        if len(self._tat) > 50_000:
            self._tat = {k: t for k, t in self._tat.items() if t > now}

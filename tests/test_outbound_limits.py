"""Pacing: a business number's throughput and the pair rate to one customer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from engine.outbound.limits import NumberRateLimiter, PairLimiter


class FakeTime:
    """Monotonic time that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        for _ in range(3):  # let the waiters just handed a slot run at the time they got it
            await asyncio.sleep(0)
        self.now += seconds


async def test_the_rate_holds_after_a_small_burst() -> None:
    fake = FakeTime()
    limiter = NumberRateLimiter(80, monotonic=fake.monotonic, sleep=fake.sleep)
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(fake.now)

    await asyncio.gather(*(one() for _ in range(161)))
    # GCRA: message i never goes before its slot (i / 80 s) less the 10 ms tolerance, and
    # the last one is not late, so the rate is exactly 80 per second.
    assert all(at >= 1000.0 + i / 80 - 0.01 - 1e-9 for i, at in enumerate(times))
    assert times[-1] <= 1000.0 + 160 / 80 + 1e-9


async def test_replies_overtake_waiting_bulk() -> None:
    fake = FakeTime()
    limiter = NumberRateLimiter(10, burst=1, monotonic=fake.monotonic, sleep=fake.sleep)
    order: list[str] = []

    async def one(name: str, priority: int) -> None:
        await limiter.acquire(priority)
        order.append(name)

    await limiter.acquire(2)  # takes the free slot; the rest wait
    bulk = [asyncio.create_task(one(f"bulk{n}", 2)) for n in range(3)]
    await asyncio.sleep(0)
    reply = asyncio.create_task(one("reply", 0))
    await asyncio.gather(*bulk, reply)
    assert order == ["reply", "bulk0", "bulk1", "bulk2"]


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    fake = FakeTime()
    limiter = NumberRateLimiter(10, burst=1, monotonic=fake.monotonic, sleep=fake.sleep)
    await limiter.acquire()
    gone = asyncio.create_task(limiter.acquire())
    stays = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await stays
    # The next slot (0.1 s on, less the 10 ms tolerance), not the one after it.
    assert round(fake.now, 6) == 1000.09, "the next slot went to the waiter still there"


async def test_no_rate_means_no_wait() -> None:
    limiter = NumberRateLimiter(None)
    for _ in range(1000):
        await limiter.acquire()
    assert limiter.waiting == 0


def test_pair_limit_spaces_a_burst() -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    pair = PairLimiter(timedelta(seconds=6), burst=3)
    waits = []
    now = start
    for _ in range(5):
        wait = pair.wait("ann", now)
        waits.append(wait.total_seconds())
        now += wait
        pair.note("ann", now)
    assert waits == [0, 0, 0, 6, 6]
    assert pair.wait("bob", start) == timedelta(0), "another customer is not held up"
    assert pair.wait("ann", start + timedelta(hours=1)) == timedelta(0)

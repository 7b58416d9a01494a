"""Identifiers that sort by creation time (UUIDv7 layout, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> str:
    """Return a new time-ordered UUID string.

    >>> a, b = new_id(), new_id()
    >>> len(a) == 36 and a < b
    True
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 68) << 64 & (0xFFF << 64)  # 12 random bits
    value |= 0b10 << 62  # RFC 9562 variant
    value |= rand & ((1 << 62) - 1)
    return str(_monotonic(uuid.UUID(int=value)))


def new_ids(count: int) -> list[str]:
    """``count`` new ids at once, in creation order: after the first, each is the one
    before plus one, as :func:`new_id` does within a millisecond (bulk planning).

    >>> ids = new_ids(3)
    >>> ids == sorted(ids) and len(set(ids)) == 3 and new_id() > ids[-1]
    True
    """
    global _last
    if count <= 0:
        return []
    first = uuid.UUID(new_id()).int
    last = first + count - 1
    _last = uuid.UUID(int=last)
    if first >> 48 != last >> 48:  # the last 12 digits roll over: format each in full
        return [str(uuid.UUID(int=value)) for value in range(first, last + 1)]
    prefix = str(_last)[:24]  # all but the last 12 digits, the same for every id
    low = first & 0xFFFFFFFFFFFF
    return [f"{prefix}{value:012x}" for value in range(low, low + count)]


_last: uuid.UUID | None = None


def _monotonic(candidate: uuid.UUID) -> uuid.UUID:
    # Two ids minted in the same millisecond must still sort in creation order.
    global _last
    if _last is not None and candidate.int <= _last.int:
        candidate = uuid.UUID(int=_last.int + 1)
    _last = candidate
    return candidate

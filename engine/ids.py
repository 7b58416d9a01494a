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


_last: uuid.UUID | None = None


def _monotonic(candidate: uuid.UUID) -> uuid.UUID:
    # Two ids minted in the same millisecond must still sort in creation order.
    global _last
    if _last is not None and candidate.int <= _last.int:
        candidate = uuid.UUID(int=_last.int + 1)
    _last = candidate
    return candidate

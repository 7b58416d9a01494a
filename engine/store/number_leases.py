"""Which worker sends for each business number.

A business number's limits (its throughput, Meta's pair rate to each customer) hold for
the number as a whole, so one worker at a time sends for it and paces it alone: the
sender *holds* a number through a lease (owner + deadline) that it renews while it
runs, and claims outbox rows only for numbers it holds. A worker that stops hands its
numbers back; one that dies loses them when the lease lapses, and another takes them.

PostgreSQL takes a lease with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <=
now`` (a row lock serialises two takers); SQLite has one writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from datetime import datetime


class NumberLeaseRepo(ABC):
    @abstractmethod
    async def hold(
        self,
        owner: str,
        wanted: Collection[str],
        *,
        now: datetime,
        until: datetime,
        default_number: str,
        scan: bool = True,
    ) -> list[str]:
        """Renew ``owner``'s leases and take those nobody holds (or whose lease lapsed)
        among ``wanted`` and, with ``scan``, the numbers of due outbox rows
        (``default_number`` for a row that names none); the numbers ``owner`` holds now,
        until ``until``."""

    @abstractmethod
    async def release(self, owner: str) -> None:
        """Hand back every number ``owner`` holds."""

    @abstractmethod
    async def holders(self, now: datetime) -> dict[str, str]:
        """The owner of each number whose lease has not lapsed."""

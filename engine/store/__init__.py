"""Persistence behind one interface; see :mod:`engine.store.base`."""

from __future__ import annotations

from engine.clock import Clock
from engine.store.base import Job, Store, Tx
from engine.store.failures import AlreadyExists, NotFound, StoreBusy, StoreError, StoreUnavailable

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


async def open_store(
    database_url: str,
    *,
    clock: Clock | None = None,
    pool_size: int = 10,
    acquire_timeout: float = 2.0,
) -> Store:
    """Open (and migrate) the store that ``database_url`` names.

    ``pool_size`` and ``acquire_timeout`` (seconds to wait for a free connection before
    StoreBusy) concern PostgreSQL only.
    """
    if database_url.startswith("sqlite:///"):
        from engine.store.sqlite import SqliteStore

        return await SqliteStore.open(database_url.removeprefix("sqlite:///"), clock=clock)
    if database_url.startswith(POSTGRES_SCHEMES):
        # Imported here so that a SQLite deployment never loads the PostgreSQL driver.
        from engine.store.postgres import PostgresStore

        return await PostgresStore.open(
            database_url, clock=clock, max_size=pool_size, acquire_timeout=acquire_timeout
        )
    raise ValueError(f"unsupported DATABASE_URL {database_url!r}")


__all__ = [
    "POSTGRES_SCHEMES",
    "AlreadyExists",
    "Job",
    "NotFound",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "Tx",
    "open_store",
]

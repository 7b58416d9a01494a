"""Persistence behind one interface; see :mod:`engine.store.base`."""

from __future__ import annotations

from engine.clock import Clock
from engine.store.base import Job, Store, Tx
from engine.store.errors import AlreadyExists, NotFound, StoreError


async def open_store(database_url: str, *, clock: Clock | None = None) -> Store:
    """Open (and migrate) the store that ``database_url`` names."""
    if database_url.startswith("sqlite:///"):
        from engine.store.sqlite import SqliteStore

        return await SqliteStore.open(database_url.removeprefix("sqlite:///"), clock=clock)
    raise ValueError(f"unsupported DATABASE_URL {database_url!r}")


__all__ = ["AlreadyExists", "Job", "NotFound", "Store", "StoreError", "Tx", "open_store"]

"""The PostgreSQL store; see :mod:`engine.store.postgres.store`."""

from engine.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]

"""Versioned schema migrations: ``migrations/NNNN_name.sql``, applied in order, once.

Several processes may start at once against one database; a session advisory lock
makes them take turns, so each migration runs once and the others find it recorded.
"""

from __future__ import annotations

import logging

import asyncpg

from engine.store.migrations import Migration
from engine.store.migrations import available as migrations_in

log = logging.getLogger(__name__)
# A fixed 64-bit key other tools are unlikely to pick: "optinflo" in ASCII.
MIGRATION_LOCK_KEY = 0x6F7074696E666C6F


def available() -> list[Migration]:
    return migrations_in("engine.store.postgres")


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction."""
    # Held by the session, not a transaction, so it spans every migration's transaction;
    # it goes with the connection if this process dies half way.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        return await _apply_missing(conn)
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def _apply_missing(conn: asyncpg.Connection) -> list[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    applied = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    done: list[int] = []
    for migration in available():
        if migration.version in applied:
            continue
        try:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
        except asyncpg.PostgresError as error:
            raise RuntimeError(
                f"migration {migration.version:04d}_{migration.name} failed: {error}"
            ) from error
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done

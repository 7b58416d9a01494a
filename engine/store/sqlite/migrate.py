"""Versioned schema migrations: ``migrations/NNNN_name.sql``, applied in order, once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import aiosqlite

from engine.store.migrations import Migration
from engine.store.migrations import available as migrations_in
from engine.store.sqlite.db import to_db

log = logging.getLogger(__name__)


def available() -> list[Migration]:
    return migrations_in("engine.store.sqlite")


async def migrate(conn: aiosqlite.Connection) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {
        row[0] for row in await conn.execute_fetchall("SELECT version FROM schema_migrations")
    }
    done: list[int] = []
    for migration in available():
        if migration.version in applied:
            continue
        # executescript commits what is pending first; the script is one transaction.
        try:
            await conn.executescript(
                "BEGIN IMMEDIATE;\n"
                + migration.sql
                + "\nINSERT INTO schema_migrations (version, name, applied_at) VALUES "
                f"({migration.version}, '{migration.name}', '{to_db(datetime.now(UTC))}');\n"
                "COMMIT;"
            )
        except Exception as error:
            if conn.in_transaction:
                await conn.rollback()
            raise RuntimeError(
                f"migration {migration.version:04d}_{migration.name} failed: {error}"
            ) from error
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done

"""Versioned schema migrations: ``migrations/NNNN_name.sql``, applied in order, once."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import aiosqlite

from engine.store.sqlite.db import to_db

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("engine.store.sqlite").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


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

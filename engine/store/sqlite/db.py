"""A thin layer over one aiosqlite connection: queries, rows, and time as text."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from engine.store.announcements import Topic

Params = Sequence[Any] | dict[str, Any]


def to_db(moment: datetime) -> str:
    """UTC text of fixed width, so that text order is time order.

    >>> to_db(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    '2026-03-01T09:30:00.000000Z'
    """
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # strftime writes such years unpadded: keep what it wrote
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same text as strftime, in a third less time (several per stored message)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text)


def from_db_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


class Db:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    def announce(self, topic: Topic) -> None:
        """See :meth:`engine.store.base.Tx.announce`; a reader has nothing to announce."""

    async def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.conn.execute_fetchall(sql, params)
        for row in rows:
            return row
        return None

    async def all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def run(self, sql: str, params: Params = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        cursor = await self.conn.execute(sql, params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def many(self, sql: str, rows: Iterable[Params]) -> None:
        await self.conn.executemany(sql, rows)


class WriterDb(Db):
    """The single writer's statements, run on the event loop's own thread.

    They are short (the pages are in SQLite's cache), and a thread hop per statement
    cost more than the statement: under load the hops, not SQLite, bounded how many
    webhooks a second the writer could take. The writer's slow steps run in a worker
    thread: ``COMMIT`` (an fsync), and ``BEGIN IMMEDIATE`` when another process holds
    the write lock (see ``SqliteStore._run_batch``).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.sync = conn
        self.announced: set[Topic] = set()
        """What the job under way announced (the store takes it when the job ends)."""

    def announce(self, topic: Topic) -> None:
        self.announced.add(topic)

    async def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.sync.execute(sql, params).fetchone()
        return row

    async def all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.sync.execute(sql, params).fetchall()

    async def run(self, sql: str, params: Params = ()) -> int:
        cursor = self.sync.execute(sql, params)
        count = cursor.rowcount
        cursor.close()
        return count

    async def many(self, sql: str, rows: Iterable[Params]) -> None:
        self.sync.executemany(sql, rows)

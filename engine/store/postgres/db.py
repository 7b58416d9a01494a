"""A thin layer over one asyncpg connection: the only way repositories reach PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from engine.store.announcements import Topic


def _encode_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def init_connection(conn: asyncpg.Connection) -> None:
    """Set up every new pooled connection: JSON columns carry Python objects, not text."""
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=_encode_json, decoder=json.loads, schema="pg_catalog"
        )


def rows_changed(status: str) -> int:
    """The row count of a command status tag.

    >>> rows_changed("INSERT 0 3"), rows_changed("UPDATE 2"), rows_changed("CREATE TABLE")
    (3, 2, 0)
    """
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class PgDb:
    """Queries on the connection of one transaction; ``$1, $2...`` placeholders."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.announced: set[Topic] = set()
        """What the job announced; the store NOTIFYs it just before COMMIT (a read
        announces nothing)."""

    def announce(self, topic: Topic) -> None:
        """See :meth:`engine.store.base.Tx.announce`."""
        self.announced.add(topic)

    async def one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(sql, *args)
        return row

    async def all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(sql, *args))

    async def val(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None when there is no row."""
        return await self.conn.fetchval(sql, *args)

    async def run(self, sql: str, *args: Any) -> int:
        """Execute one statement; the number of rows it changed."""
        status: str = await self.conn.execute(sql, *args)
        return rows_changed(status)

    async def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

"""Databases for tests: a SQLite file, or a fresh PostgreSQL database per test.

``OPTINFLOW_TEST_BACKEND=postgres`` runs the suite on PostgreSQL (the server of
``OPTINFLOW_TEST_PG``). A template database is migrated once per session; each test's
database is a copy of it (``CREATE DATABASE ... TEMPLATE``), made the first time the
test asks for it and dropped when the test ends.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

BACKEND = os.environ.get("OPTINFLOW_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"OPTINFLOW_TEST_BACKEND must be sqlite or postgres, not {BACKEND!r}")
POSTGRES = BACKEND == "postgres"
ADMIN_URL = os.environ.get("OPTINFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

T = TypeVar("T")


def url_of(database: str, admin_url: str = ADMIN_URL) -> str:
    """The admin URL with another database name."""
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from plain code, even inside a running event loop
    (``make_settings`` is called from async tests): on a loop of its own thread."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            outcome.append(asyncio.run(_awaited(make)))
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=main, name="test-databases")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


async def admin(*statements: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(url_of(database))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class PgDatabases:
    """The template of this session and the databases the current test made."""

    def __init__(self) -> None:
        self.prefix = f"optinflow_t_{os.getpid()}_"
        self.template = f"optinflow_tmpl_{os.getpid()}"
        self._template_ready = False
        self._count = 0
        self._made: list[str] = []
        self._by_path: dict[Path, str] = {}

    def for_path(self, path: Path) -> str:
        """The database that stands for the SQLite file ``path`` in this test: asking
        twice (a restart) gives the same database, as it would give the same file."""
        if path not in self._by_path:
            self._by_path[path] = self.create()
        return self._by_path[path]

    def create(self) -> str:
        if not self._template_ready:
            run_sync(self._make_template)
            self._template_ready = True
        self._count += 1
        name = f"{self.prefix}{self._count}"
        run_sync(lambda: admin(f"CREATE DATABASE {name} TEMPLATE {self.template}"))
        self._made.append(name)
        return url_of(name)

    def drop_test_databases(self) -> None:
        names, self._made = self._made, []
        self._by_path.clear()
        if names:
            run_sync(lambda: admin(*(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)" for n in names)))

    def drop_template(self) -> None:
        if self._template_ready:
            run_sync(lambda: admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)"))
            self._template_ready = False

    async def _make_template(self) -> None:
        await admin(
            f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)",
            f"CREATE DATABASE {self.template}",
        )
        # Imported here: a SQLite run never loads the PostgreSQL store.
        from engine.store.postgres.migrate import migrate

        conn = await asyncpg.connect(url_of(self.template))
        try:
            await migrate(conn)
        finally:
            await conn.close()


PG_DATABASES = PgDatabases()


def database_url(path: Path) -> str:
    """The DATABASE_URL of the store a test keeps at ``path``, on the chosen backend."""
    if POSTGRES:
        return PG_DATABASES.for_path(path)
    return f"sqlite:///{path}"


def first_value(url: str, sql: str) -> object:
    """The first column of the first row ``sql`` reads, straight from the database (not
    through the store), to check what is stored."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            row = db.execute(sql).fetchone()
        return None if row is None else row[0]

    async def fetch() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return run_sync(fetch)


def execute(url: str, sql: str, *params: object) -> None:
    """Run one statement straight on the database (not through the store), to set up what
    the store would not write; ``$1, $2...`` placeholders on either backend."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute(re.sub(r"\$(\d+)", r"?\1", sql), params)
        return

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql, *params)
        finally:
            await conn.close()

    run_sync(run)

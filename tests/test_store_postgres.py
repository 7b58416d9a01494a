"""The PostgreSQL store's own duties: migrating once, retrying conflicts, and saying
clearly when the database is busy or gone (the webhook then answers 503)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from engine.clock import FrozenClock
from engine.store import Store, StoreBusy, StoreUnavailable, Tx, open_store
from engine.store.announcements import Topic
from engine.store.postgres import PostgresStore
from engine.store.postgres.migrate import available, migrate
from engine.store.postgres.store import PgTx
from engine.web.error_answers import error_middleware
from tests.conftest import AiohttpClient
from tests.databases import PG_DATABASES, admin, url_of

postgres = pytest.mark.postgres


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """A database with no schema at all, dropped after the test."""
    name = f"{PG_DATABASES.prefix}empty"
    await admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    yield url_of(name)
    await admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def raw(tx: Tx) -> asyncpg.Connection:
    assert isinstance(tx, PgTx)
    return tx.db.conn


@postgres
async def test_ten_processes_starting_at_once_migrate_once(empty_database: str) -> None:
    connections = [await asyncpg.connect(empty_database) for _ in range(10)]
    try:
        applied = await asyncio.gather(*(migrate(conn) for conn in connections))
        rows = await connections[0].fetch(
            "SELECT version, count(*) AS n FROM schema_migrations GROUP BY version"
        )
    finally:
        for conn in connections:
            await conn.close()
    versions = [m.version for m in available()]
    assert sorted(v for done in applied for v in done) == versions, "each applied once"
    assert sum(1 for done in applied if done) == 1, "by one of the ten"
    assert {row["version"]: row["n"] for row in rows} == dict.fromkeys(versions, 1)


@postgres
async def test_opening_an_empty_database_migrates_it(empty_database: str) -> None:
    store = await open_store(empty_database)
    try:
        await store.write(lambda tx: tx.settings.put("k", "v"))
        async with store.read() as tx:
            assert await tx.settings.get("k") == "v"
    finally:
        await store.close()


@postgres
async def test_the_consent_ledger_refuses_update_and_delete(store: Store) -> None:
    async def add_event(tx: Tx) -> None:
        conn = raw(tx)
        contact_id = await conn.fetchval(
            "INSERT INTO contacts (wa_id, marketing_opt_in, created_at, updated_at)"
            " VALUES ('16505551234', true, now(), now()) RETURNING id"
        )
        await conn.execute(
            "INSERT INTO consent_events (contact_id, marketing_opt_in, source, at)"
            " VALUES ($1, true, 'api', now())",
            contact_id,
        )

    await store.write(add_event)
    for statement in (
        "UPDATE consent_events SET marketing_opt_in = false",
        "DELETE FROM consent_events",
        "TRUNCATE consent_events",
    ):

        async def tamper(tx: Tx, statement: str = statement) -> None:
            await raw(tx).execute(statement)

        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await store.write(tamper)
    async with store.read() as tx:
        assert await raw(tx).fetchval("SELECT count(*) FROM consent_events") == 1


@postgres
async def test_jobs_that_read_then_write_one_row_at_once_both_take_effect(store: Store) -> None:
    await store.write(lambda tx: tx.settings.put("counter", "0"))
    both_read = asyncio.Barrier(2)
    runs: list[str] = []

    def increment(name: str) -> Any:
        async def job(tx: Tx) -> None:
            value = int(await tx.settings.get("counter") or "0")
            runs.append(name)
            if runs.count(name) == 1:  # the first run of each waits for the other's read
                await both_read.wait()
            await tx.settings.put("counter", str(value + 1))

        return job

    await asyncio.gather(store.write(increment("a")), store.write(increment("b")))
    async with store.read() as tx:
        assert await tx.settings.get("counter") == "2"
    assert len(runs) == 3, "the job that lost the conflict ran again"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@postgres
async def test_an_unreachable_server_is_named_without_the_password() -> None:
    url = f"postgresql://ann:s3cret@127.0.0.1:{unused_port()}/optinflow"
    with pytest.raises(StoreUnavailable) as raised:
        await open_store(url)
    message = str(raised.value)
    assert url.replace(":s3cret", "") in message
    assert "s3cret" not in message


@postgres
async def test_a_pool_with_no_free_connection_answers_busy(clock: FrozenClock) -> None:
    url = PG_DATABASES.create()
    store = await PostgresStore.open(url, clock=clock, max_size=1, acquire_timeout=0.2)
    try:
        async with store.read():
            with pytest.raises(StoreBusy):
                await store.write(lambda tx: tx.settings.put("k", "v"))
        await store.write(lambda tx: tx.settings.put("k", "v"))  # free again
    finally:
        await store.close()


@postgres
async def test_connections_the_server_closed_are_replaced(clock: FrozenClock) -> None:
    """As after a restart of the server: at most the calls already on a dead connection
    fail, with StoreUnavailable, and the pool connects again by itself."""
    url = PG_DATABASES.create()
    store = await PostgresStore.open(url, clock=clock, min_size=2, max_size=2)
    try:
        await store.ping()
        name = url.rsplit("/", 1)[1]
        await admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        outcomes: list[str] = []
        while not outcomes or outcomes[-1] != "ok":
            assert len(outcomes) < 4, outcomes
            try:
                await store.write(lambda tx: tx.settings.put("k", "v"))
                outcomes.append("ok")
            except StoreUnavailable:
                outcomes.append("unavailable")
        async with store.read() as tx:
            assert await tx.settings.get("k") == "v"
    finally:
        await store.close()


async def test_a_busy_or_unreachable_store_answers_503_with_retry_after(
    aiohttp_client: AiohttpClient,
) -> None:
    async def busy(request: web.Request) -> web.Response:
        raise StoreBusy("no connection")

    async def gone(request: web.Request) -> web.Response:
        raise StoreUnavailable("the database at postgresql://db/app cannot be reached")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/webhook", busy)
    app.router.add_get("/api/v1/contacts", gone)
    client = await aiohttp_client(app)
    for response, code in (
        (await client.post("/webhook"), "store_busy"),
        (await client.get("/api/v1/contacts"), "store_unavailable"),
    ):
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"]["code"] == code


@postgres
async def test_an_announcement_wakes_the_other_stores_and_a_lost_listener_comes_back(
    clock: FrozenClock,
) -> None:
    url = PG_DATABASES.create()
    here = await PostgresStore.open(url, clock=clock)
    there = await PostgresStore.open(url, clock=clock)

    def announcing(topic: Topic) -> Callable[[Tx], Awaitable[None]]:
        async def job(tx: Tx) -> None:
            tx.announce(topic)

        return job

    async def failing(tx: Tx) -> None:
        tx.announce(Topic.CAMPAIGNS)
        raise RuntimeError("rolled back")

    async def woken_by_the_other(event: asyncio.Event) -> None:
        """Announce from the other store until ``event`` is set (its listener may not
        listen yet)."""
        deadline = asyncio.get_running_loop().time() + 10
        while not event.is_set():
            assert asyncio.get_running_loop().time() < deadline, "never woken"
            with contextlib.suppress(StoreUnavailable):  # a connection the server closed
                await there.write(announcing(Topic.CAMPAIGNS))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 0.2)

    try:
        campaigns = here.subscribe(Topic.CAMPAIGNS)
        outbox = here.subscribe(Topic.OUTBOX)
        await woken_by_the_other(campaigns)
        await asyncio.sleep(0)
        campaigns.clear()
        outbox.clear()
        with pytest.raises(RuntimeError):
            await there.write(failing)
        await there.write(announcing(Topic.OUTBOX))
        await asyncio.wait_for(outbox.wait(), 5)
        # Notifications come in commit order: the rolled-back one would have come first.
        assert not campaigns.is_set(), "a rolled-back job announced"

        # The server drops every connection (a restart): the listener connects again and
        # wakes every subscriber once, since what was announced meanwhile was lost.
        campaigns.clear()
        outbox.clear()
        name = url.rsplit("/", 1)[1]
        await admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        await asyncio.wait_for(outbox.wait(), 10)
        campaigns.clear()
        await woken_by_the_other(campaigns)
    finally:
        await here.close()
        await there.close()

"""Scale-out: SQLite in one process beside PostgreSQL in one and in two, each a real process.

In one run, on this machine's cores (printed), with every server a process of its own on
loopback and this script only driving and counting:

- *webhook ingest*: signed text notifications posted at a fixed concurrency to web
  processes (``OUTBOUND_WORKER=false``: stored before the answer, nothing else), spread
  over them in turn: SQLite with one web process, PostgreSQL with one and with two.
  Targets: PostgreSQL with one at least 0.7x SQLite; two at least 1.5x one where the
  cores allow.
- *sending*: messages queued beforehand, sent by the real sender in this process with
  no rate limit to the Cloud API simulator in its own process, SQLite against
  PostgreSQL (target: at least 0.7x). A business number is sent from by one worker at a
  time (that is how its limits hold in total), so a second worker does not send one
  number's messages faster.
- *end to end*: a broadcast to 20,000 contacts at a limit of 1,000/s, the simulator in its
  own process posting sent, delivered and read back to the webhook (three status
  notifications per message), on SQLite (one process doing everything) and on
  PostgreSQL (a web process and a worker): the send rate the simulator saw, and the time
  until every status was stored.

Run: ``.venv/bin/python -m bench.scale_out [--notifications 8000] [--messages 5000]
[--recipients 20000] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]``.
The PostgreSQL parts make a database of their own and drop it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.outbound import PHONE_NUMBER_ID, ours, prepare, queue
from bench.webhook_ingest import notification
from engine.clock import SystemClock
from engine.devtools.cluster import API_TOKEN, APP_SECRET, Cluster
from engine.outbound.numbers import register_configured
from engine.store import open_store
from engine.whatsapp import signature

CONCURRENCY = 32
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass(frozen=True)
class Backend:
    name: str
    url: str


@contextmanager
def sqlite_backend(workdir: Path, label: str) -> Iterator[Backend]:
    yield Backend("SQLite", f"sqlite:///{workdir / label}.db")


@contextmanager
def postgres_backend(server_url: str) -> Iterator[Backend]:
    name = f"optinflow_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield Backend("PostgreSQL", server_url.rsplit("/", 1)[0] + f"/{name}")
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# Webhook ingest -------------------------------------------------------------------


async def drive(urls: list[str], bodies: list[bytes]) -> float:
    """Post every body, CONCURRENCY at a time, to the urls in turn; notifications/s."""
    pending = iter(zip(itertools.cycle(urls), bodies, strict=False))
    failures: list[int] = []

    async def poster(session: aiohttp.ClientSession) -> None:
        for url, body in pending:
            headers = {
                "Content-Type": "application/json",
                signature.HEADER: signature.sign(body, APP_SECRET),
            }
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures.append(response.status)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(poster(session) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} notifications refused: {failures[:5]}")
    return len(bodies) / elapsed


def ingest(backend: Backend, webs: int, count: int, workdir: Path) -> float:
    with Cluster(backend.url, workdir) as cluster:
        nodes = [cluster.web() for _ in range(webs)]
        urls = [f"{node.url}/webhook" for node in nodes]
        asyncio.run(drive(urls, [notification(n, "warm") for n in range(500)]))
        prefix = f"w{webs}"
        return asyncio.run(drive(urls, [notification(n, prefix) for n in range(count)]))


# Sending --------------------------------------------------------------------------


def sending(backend: Backend, count: int, workdir: Path) -> float:
    async def run(simulator_base: str) -> float:
        store = await open_store(backend.url)
        try:
            contacts = await prepare(store, count)
            await queue(store, contacts, "scale-out")
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:
                return (await ours(store, session, simulator_base, count, None)).rate
        finally:
            await store.close()

    with Cluster(backend.url, workdir) as cluster:
        # The store must exist before the simulator reads templates from it.
        asyncio.run(_register_sending_number(backend.url))
        cluster.simulator()
        assert cluster.graph_base is not None
        return asyncio.run(run(cluster.graph_base))


async def _migrate(url: str) -> None:
    store = await open_store(url)
    await store.close()


async def _register_sending_number(url: str) -> None:
    """The number the sender sends from, registered (the simulator serves registered
    numbers only, as Meta serves a business its own)."""
    store = await open_store(url)
    now = SystemClock().now()
    try:
        await store.write(
            lambda tx: register_configured(tx, PHONE_NUMBER_ID, "+1 555-000-0001", now=now)
        )
    finally:
        await store.close()


# End to end -----------------------------------------------------------------------


@dataclass(frozen=True)
class EndToEnd:
    send_rate: float
    """Sends a second as the simulator received them."""
    all_stored_after: float
    """Seconds from the broadcast's start until every status was stored."""
    statuses: int


def contacts_csv(count: int) -> bytes:
    lines = ["phone,name,tags"]
    lines += [f"+1 650 {300 + n // 10000:03d} {n % 10000:04d},C{n},scale" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


@asynccontextmanager
async def api(base: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base, headers=AUTH) as session:
        yield session


async def _json(response: aiohttp.ClientResponse, expected: int) -> Any:
    body = await response.json()
    if response.status != expected:
        raise RuntimeError(f"{response.method} {response.url}: {response.status} {body}")
    return body


async def broadcast_end_to_end(web_url: str, simulator_url: str, recipients: int) -> EndToEnd:
    async with api(web_url) as session:
        headers = {"Content-Type": "text/csv"}
        async with session.post(
            "/api/v1/contacts/import", data=contacts_csv(recipients), headers=headers
        ) as response:
            imported = await _json(response, 200)
        assert imported["created"] == recipients, imported
        body = {
            "name": "scale-out",
            "send_at": datetime.now(UTC).isoformat(),
            "template": {"name": "order_update", "language": "en_US", "params": ["A1", "ready"]},
            "tags": ["scale"],
        }
        started = time.perf_counter()
        async with session.post("/api/v1/broadcasts", json=body) as response:
            broadcast = await _json(response, 201)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            async with session.get(f"/api/v1/broadcasts/{broadcast['id']}") as response:
                if response.status == 503:  # the web process sheds load: ask again later
                    await asyncio.sleep(0.5)
                    continue
                state = await _json(response, 200)
            if state["counts"].get("read", 0) == recipients:
                break
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError(f"not every status was stored: {state['counts']}")
        stored_after = time.perf_counter() - started
    async with (
        aiohttp.ClientSession() as plain,
        plain.get(f"{simulator_url}/simulator/stats", headers=AUTH) as response,
    ):
        stats = await _json(response, 200)
    return EndToEnd(float(stats["rate"]), stored_after, 3 * recipients)


def end_to_end(backend: Backend, recipients: int, workdir: Path, *, split: bool) -> EndToEnd:
    limits = {"OUTBOUND_RATE_LIMIT": "1000", "CAMPAIGN_POLL_SECONDS": "0.2"}
    with Cluster(backend.url, workdir, env=limits) as cluster:
        asyncio.run(_migrate(backend.url))
        simulator = cluster.simulator(status_delay_seconds=0.0)
        web = cluster.web(background=not split)
        if split:
            cluster.worker()
        return asyncio.run(broadcast_end_to_end(web.url, simulator.url, recipients))


# Report ---------------------------------------------------------------------------


def show(label: str, value: float, unit: str) -> None:
    figure = f"{value:8.2f}" if value < 10 else f"{value:8.0f}"
    print(f"{label:<46} {figure}  {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=8000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's URL; the bench makes a database on it and drops it",
    )
    parser.add_argument("--skip", default="", help="comma list of: ingest, sending, e2e")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"cores: {os.cpu_count()}; concurrency {CONCURRENCY}")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if "ingest" not in skip:
            with sqlite_backend(workdir, "ingest") as backend:
                sqlite_one = ingest(backend, 1, args.notifications, workdir)
            with postgres_backend(args.postgres) as backend:
                pg_one = ingest(backend, 1, args.notifications, workdir)
            with postgres_backend(args.postgres) as backend:
                pg_two = ingest(backend, 2, args.notifications, workdir)
            show("webhook ingest, SQLite, 1 web process", sqlite_one, "notifications/s")
            show("webhook ingest, PostgreSQL, 1 web process", pg_one, "notifications/s")
            show("webhook ingest, PostgreSQL, 2 web processes", pg_two, "notifications/s")
            show("  ratio PostgreSQL / SQLite, 1 process", pg_one / sqlite_one, "(target >= 0.7)")
            show("  ratio 2 / 1 web processes, PostgreSQL", pg_two / pg_one, "(target >= 1.5)")
        if "sending" not in skip:
            with sqlite_backend(workdir, "sending") as backend:
                sqlite_rate = sending(backend, args.messages, workdir)
            with postgres_backend(args.postgres) as backend:
                pg_rate = sending(backend, args.messages, workdir)
            show("sending unthrottled, SQLite", sqlite_rate, "msg/s")
            show("sending unthrottled, PostgreSQL", pg_rate, "msg/s")
            show("  ratio PostgreSQL / SQLite", pg_rate / sqlite_rate, "(target >= 0.7)")
        if "e2e" not in skip:
            with sqlite_backend(workdir, "e2e") as backend:
                lite = end_to_end(backend, args.recipients, workdir, split=False)
            with postgres_backend(args.postgres) as backend:
                pg = end_to_end(backend, args.recipients, workdir, split=True)
            for name, figures in (("SQLite, one process", lite), ("PostgreSQL, web + worker", pg)):
                print(
                    f"end to end, {name:<26} {figures.send_rate:8.0f} msg/s sent at a limit of "
                    f"1,000/s; all {figures.statuses:,} statuses stored after "
                    f"{figures.all_stored_after:.1f} s"
                )


if __name__ == "__main__":
    main()

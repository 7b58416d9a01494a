"""Background parts outlive a database that refuses writes for a while, and say so.

The database is made to refuse for real: another connection holds SQLite's write lock
(``BEGIN IMMEDIATE``) for longer than the store's busy timeout, as another process would.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.web.keys import SENDER
from tests.conftest import FIXTURES, ROOT
from tests.outbound_support import Outbound, eventually, start_outbound

pytestmark = pytest.mark.sqlite_only

ANN = "16505551234"
ORDER = {"name": "order_update", "language": "en_US", "params": ["A-1", "ready"]}


def failures(metrics: str, part: str) -> float:
    found = re.search(
        rf'^optinflow_background_failures_total{{part="{part}"}} (\S+)$', metrics, re.M
    )
    return float(found.group(1)) if found else 0.0


def last_success(metrics: str, part: str) -> float:
    name = "optinflow_background_last_success_timestamp_seconds"
    found = re.search(rf'^{name}{{part="{part}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def write_lock(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to the server's database, ready to take the write lock."""
    conn = sqlite3.connect(tmp_path / "optinflow.db", isolation_level=None, timeout=10)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


async def test_the_sender_survives_a_locked_database_and_health_says_so(
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    write_lock: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock, HEALTH_STALL_SECONDS=1)
    client = outbound.client
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})

    # A message waiting for its retry: due once the clock moves, while the lock is held.
    await outbound.fail(ANN, 130429, times=1)
    accepted = await outbound.send(to=ANN, template=ORDER)

    async def waiting_to_retry() -> bool:
        message = await outbound.message(accepted["id"])
        return bool(message["attempts"] == 1 and message["status"] == "queued")

    await eventually(waiting_to_retry, what="the throttled try to be recorded")
    before = last_success(await (await client.get("/metrics")).text(), "sender")
    assert before > 0

    write_lock.execute("BEGIN IMMEDIATE")  # longer than the store's 5 s busy timeout
    outbound.advance(seconds=5)

    async def sender_stalled() -> dict[str, Any] | None:
        response = await client.get("/healthz")
        body: dict[str, Any] = await response.json()
        return body if response.status == 503 and "sender" in body.get("parts", {}) else None

    body = await eventually(sender_stalled, what="/healthz to name the sender", within=15)
    assert body["status"] == "unavailable"
    assert "store" not in body, "readers still read: only the writing parts stall"
    assert body["parts"]["sender"]["state"] == "stalled"

    async def failure_counted() -> str | None:
        text = await (await client.get("/metrics")).text()
        return text if failures(text, "sender") >= 1 else None

    await eventually(failure_counted, what="the sender's failed round counted", within=15)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(line.startswith("sender: round failed") and "StoreBusy" in line for line in logged)
    body = await sender_stalled()
    assert body is not None
    assert "StoreBusy" in body["parts"]["sender"]["reason"]
    assert body["parts"]["sender"]["consecutive_failures"] >= 1
    assert (await outbound.message(accepted["id"]))["status"] == "queued", "nothing was sent"

    write_lock.execute("ROLLBACK")
    message = await outbound.wait_for(accepted["id"], "sent", "delivered", "read")
    assert message["attempts"] == 2

    async def healthy() -> bool:
        response = await client.get("/healthz")
        return response.status == 200 and await response.json() == {"status": "ok"}

    await eventually(healthy, what="/healthz to be ok again", within=20)
    text = await (await client.get("/metrics")).text()
    assert last_success(text, "sender") > before


async def test_a_web_only_process_reports_only_the_store(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, write_lock: sqlite3.Connection
) -> None:
    from engine.composition import Background
    from engine.web.app import create_app
    from tests.conftest import AUTH, make_settings

    settings = make_settings(tmp_path, OUTBOUND_WORKER=False, HEALTH_STALL_SECONDS=0.1)
    app = create_app(settings, clock=clock, background=Background(False, False))
    client = await aiohttp_client(app, headers=AUTH)
    write_lock.execute("BEGIN IMMEDIATE")
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})
    assert "optinflow_background_failures_total{" not in await (await client.get("/metrics")).text()


async def test_a_timeout_on_the_last_try_counts_as_ambiguous(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound: Outbound = await start_outbound(
        aiohttp_client, tmp_path, clock, OUTBOUND_MAX_TRIES=2, OUTBOUND_HTTP_TIMEOUT_SECONDS=0.2
    )
    await outbound.fail(ANN, "timeout", times=2, hold_seconds=0.5)
    accepted = await outbound.send(to=ANN, template=ORDER)

    async def tried_once() -> bool:
        message = await outbound.message(accepted["id"])
        return bool(message["attempts"] == 1 and message["status"] == "queued")

    await eventually(tried_once, what="the first try to time out")
    outbound.advance(seconds=10)
    message = await outbound.wait_for(accepted["id"], "failed")
    assert message["attempts"] == 2
    assert message["ambiguous_attempts"] == 2, "both tries timed out: Meta may have got either"
    report = await outbound.client.get("/api/v1/reports/messages")
    assert (await report.json())["counts"]["ambiguous"] == 1


def _without_write_permission() -> list[str]:
    """A command prefix that makes a read-only folder read-only for this user too (root
    would write to it anyway)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder would be written")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_a_database_in_a_read_only_folder_stops_the_start_with_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WA_", "API_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            DATABASE_URL=f"sqlite:///{folder / 'optinflow.db'}",
            TEMPLATES_FILE=str(FIXTURES / "templates.yaml"),
            FLOWS_DIR=str(ROOT / "flows"),
        )
        command = [sys.executable, str(ROOT / "webhook_server.py"), "--port", str(free_port())]
        finished = subprocess.run(
            [*_without_write_permission(), *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        folder.chmod(0o755)
    assert finished.returncode == 1, finished.stderr
    lines = [line for line in finished.stderr.splitlines() if " WARNING " not in line]
    assert lines == [
        f"optinflow did not start: the SQLite database {folder / 'optinflow.db'} cannot be "
        "opened for writing: unable to open database file"
    ]
    assert "Traceback" not in finished.stderr


async def test_a_stop_waits_its_grace_for_a_post_then_queues_it_again_as_ambiguous(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(
        aiohttp_client,
        tmp_path,
        clock,
        SHUTDOWN_GRACE_SECONDS=0.5,
        OUTBOUND_HTTP_TIMEOUT_SECONDS=20,
    )
    await outbound.fail(ANN, "timeout", times=1, hold_seconds=30)
    accepted = await outbound.send(to=ANN, template=ORDER)
    await eventually(lambda: outbound.received(ANN), what="the post to reach the simulator")

    started = time.monotonic()
    await outbound.app[SENDER].stop()
    assert time.monotonic() - started < 5, "the stop waited for the post past its grace"
    message = await outbound.message(accepted["id"])
    assert message["status"] == "queued", "put back, to be sent by the next worker"
    assert message["attempts"] == 1
    assert message["ambiguous_attempts"] == 1, "Meta may have got the post that was cut"

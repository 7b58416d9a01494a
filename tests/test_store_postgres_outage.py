"""PostgreSQL going away while the server runs, and coming back.

The server reaches PostgreSQL through a proxy on loopback that the test cuts and
restores (the shared server is never stopped). While it is gone the webhook answers 503
(Meta retries), never 200 for what it could not store and never 500; when it is back,
everything resumes without a restart: the webhook stores again and the bot answers.
A server that cannot reach PostgreSQL at start stops with one line naming the URL
without its password."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from engine.web.keys import STORE
from engine.whatsapp.signature import HEADER, sign
from tests.conftest import ROOT, AiohttpClient, make_app, make_settings
from tests.databases import PG_DATABASES
from tests.inbound_support import text_notification
from tests.outbound_support import eventually
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

SECRET = "outage-app-secret"
NAMES = ("1", "2.0", "2.1", "2.2", "2.3", "2.4", "3")


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


async def post(client: Any, text: str, wamid: str) -> int:
    body = json.dumps(text_notification(text, wamid=wamid, sender="16505550199")).encode()
    response = await client.post(
        "/webhook",
        data=body,
        headers={HEADER: sign(body, SECRET), "Content-Type": "application/json"},
    )
    await response.read()
    status: int = response.status
    return status


async def test_the_webhook_answers_503_while_postgresql_is_gone_and_resumes_when_it_is_back(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    url = PG_DATABASES.create()
    target = urlsplit(url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    settings = make_settings(
        tmp_path,
        DATABASE_URL=through(url, proxy.port),
        WA_APP_SECRET=SECRET,
        DATABASE_ACQUIRE_TIMEOUT_SECONDS=1,
    )
    client = await aiohttp_client(make_app(settings))
    try:
        assert await post(client, "before", "wamid.outage.1") == 200

        await proxy.cut()
        answers = [await post(client, "during", f"wamid.outage.2.{n}") for n in range(5)]
        assert set(answers) == {503}, answers

        await proxy.start()

        async def stored_again() -> bool:
            return await post(client, "during", "wamid.outage.2.0") == 200

        await eventually(stored_again, what="the webhook to store again")
        assert await post(client, "after", "wamid.outage.3") == 200

        store = client.app[STORE]
        async with store.read() as tx:
            stored = {n: await tx.messages.get_by_wamid(f"wamid.outage.{n}") for n in NAMES}
        assert {n for n, message in stored.items() if message is not None} == {
            "1",
            "2.0",
            "3",
        }, "answered 200: stored; answered 503: nothing stored (Meta sends it again)"

        async def the_bot_answered_after() -> bool:
            async with store.read() as tx:
                waiting: int = await tx.inbound.count_waiting()
            return waiting == 0

        await eventually(the_bot_answered_after, what="every stored message handed to the bot")
    finally:
        await client.close()
        await proxy.cut()


def test_a_server_that_cannot_reach_postgresql_stops_with_one_line(tmp_path: Path) -> None:
    url = "postgresql://optinflow:very-secret@127.0.0.1:9/optinflow"
    done = subprocess.run(
        [sys.executable, str(ROOT / "webhook_server.py"), "--port", "0"],
        cwd=tmp_path,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    complaint = [line for line in done.stderr.splitlines() if "did not start" in line]
    assert len(complaint) == 1, done.stderr
    assert "127.0.0.1:9/optinflow" in complaint[0]
    assert "very-secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr

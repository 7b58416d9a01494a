"""Who may use the built-in simulator: its inspection and failure routes need the REST API
token (unless ``SIMULATOR_OPEN``), its send endpoint the simulator's access token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.devtools.simulator import SIMULATOR_TOKEN
from tests.conftest import AUTH, ROOT, SAMPLE_PHONE_NUMBER_ID, make_app, make_settings

PHONE = SAMPLE_PHONE_NUMBER_ID
SEND = f"/simulator/v21.0/{PHONE}/messages"
CONTROL_ROUTES = [
    ("GET", "/simulator/messages"),
    ("DELETE", "/simulator/messages"),
    ("GET", "/simulator/stats"),
    ("GET", "/simulator/failures"),
    ("POST", "/simulator/failures"),
    ("DELETE", "/simulator/failures"),
    ("POST", "/simulator/quality"),
]
RULE = {"to": "16505551234", "code": 131056}
TEXT = {"messaging_product": "whatsapp", "to": "16505551234", "type": "text", "text": {"body": "x"}}


async def _control(client: Any, method: str, path: str, headers: dict[str, str]) -> int:
    body = RULE if method == "POST" else None
    response = await client.request(method, path, json=body, headers=headers)
    return int(response.status)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {SIMULATOR_TOKEN}"}],
    ids=["no token", "a wrong token", "the send token"],
)
async def test_inspection_and_failures_need_the_api_token(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, headers: dict[str, str]
) -> None:
    client = await aiohttp_client(make_app(make_settings(tmp_path), clock=clock))
    for method, path in CONTROL_ROUTES:
        response = await client.request(method, path, json=RULE, headers=headers)
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "unauthorized"
    listed = await client.get("/simulator/failures", headers=AUTH)
    assert (await listed.json())["failures"] == [], "a refused failure is not added"


async def test_with_the_api_token_they_answer(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await aiohttp_client(make_app(make_settings(tmp_path), clock=clock))
    statuses = [await _control(client, m, p, AUTH) for m, p in CONTROL_ROUTES]
    assert statuses == [200, 204, 200, 200, 201, 204, 422]  # (quality: not a failure rule)


async def test_simulator_open_lets_anyone_in(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, SIMULATOR_OPEN=True)
    client = await aiohttp_client(make_app(settings, clock=clock))
    statuses = [await _control(client, m, p, {}) for m, p in CONTROL_ROUTES]
    assert statuses == [200, 204, 200, 200, 201, 204, 422]  # (quality: not a failure rule)


async def test_the_send_endpoint_takes_only_the_simulator_token(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await aiohttp_client(make_app(make_settings(tmp_path), clock=clock))
    for token in ("someone-elses", "test-api-token"):
        refused = await client.post(SEND, json=TEXT, headers={"Authorization": f"Bearer {token}"})
        assert refused.status == 401
        error = (await refused.json())["error"]
        assert (error["code"], error["type"]) == (190, "OAuthException")
        assert error["message"] == "Error validating access token"
    accepted = await client.post(
        SEND, json=TEXT, headers={"Authorization": f"Bearer {SIMULATOR_TOKEN}"}
    )
    assert accepted.status == 200
    assert (await accepted.json())["messages"][0]["id"].startswith("wamid.")


def _standalone(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int, list[str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.devtools.simulator", "--port", str(port), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline().strip()]
    return process, port, lines


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5):
            return 200
    except urllib.error.HTTPError as error:
        return error.code


def _until_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _get(f"http://127.0.0.1:{port}/simulator/stats")
            return
        except OSError:
            assert time.monotonic() < deadline, "the simulator did not listen"
            time.sleep(0.02)


def test_the_standalone_simulator_is_closed_by_api_token_and_says_when_open() -> None:
    env = {k: v for k, v in os.environ.items() if k != "API_TOKEN"}
    closed, port, _ = _standalone(env={**env, "API_TOKEN": "standalone-token"})
    try:
        _until_listening(port)
        stats = f"http://127.0.0.1:{port}/simulator/stats"
        assert _get(stats) == 401
        assert _get(stats, "standalone-token") == 200
    finally:
        closed.terminate()
        closed.wait(10)
    opened, port, lines = _standalone(env=env)
    try:
        assert opened.stdout is not None
        lines.append(opened.stdout.readline().strip())
        assert lines[0].startswith("simulator listening on")
        assert lines[1].startswith("the simulator is OPEN"), lines
        _until_listening(port)
        assert _get(f"http://127.0.0.1:{port}/simulator/stats") == 200
    finally:
        opened.terminate()
        opened.wait(10)

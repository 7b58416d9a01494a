"""The launcher as a user runs it: a real process, its first-start token, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from engine.devtools.cluster import free_port
from tests.conftest import FIXTURES, ROOT


def call(
    url: str, token: str | None = None, body: dict[str, object] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("WA_", "API_", "DATABASE_"))
        }
        env["TEMPLATES_FILE"] = str(FIXTURES / "templates.yaml")
        env["FLOWS_DIR"] = str(ROOT / "flows")
        env["PYTHONPATH"] = str(ROOT)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "webhook_server.py"), "--port", str(self.port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        reader = threading.Thread(target=self._collect, daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            # The banner is printed in one write at start-up, just before the server
            # binds its port (aiohttp runs start-up hooks first): wait for both.
            if any(line.startswith("optinflow is serving") for line in self.output):
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                except OSError:
                    time.sleep(0.02)
                    continue
                return
            time.sleep(0.05)
        self.process.kill()
        raise AssertionError(f"the server did not start: {self.output}")

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    @property
    def banner(self) -> list[str]:
        return [line for line in self.output if " INFO " not in line]

    def token(self) -> str | None:
        for line in self.banner:
            if line.startswith("API token (shown once"):
                return line.rsplit(" ", 1)[1]
        return None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=15)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_first_start_makes_a_token_shows_it_once_and_keeps_it(workdir: Path) -> None:
    server = Server(workdir)
    try:
        token = server.token()
        assert token, server.banner
        assert call(f"{server.url}/healthz") == (200, {"status": "ok"})
        status, _ = call(f"{server.url}/api/v1/contacts")
        assert status == 401
        status, contact = call(f"{server.url}/api/v1/contacts", token, {"wa_id": "+16505551234"})
        assert status == 201
        assert contact["wa_id"] == "16505551234"
    finally:
        assert server.stop(signal.SIGTERM) == 0
    assert (workdir / "optinflow.db").exists(), (
        "the default store is a SQLite file in the working folder"
    )

    again = Server(workdir)
    try:
        assert again.token() is None, "the token is shown only when it is made"
        assert any("api-token --rotate" in line for line in again.banner)
        status, contact = call(f"{again.url}/api/v1/contacts/16505551234", token)
        assert status == 200
        assert contact["wa_id"] == "16505551234"
    finally:
        assert again.stop(signal.SIGINT) == 0


def test_a_rotated_token_is_taken_up_by_the_running_server(workdir: Path) -> None:
    server = Server(workdir)
    try:
        old = server.token()
        assert old
        rotated = run_with(workdir, [sys.executable, "-m", "engine", "api-token", "--rotate"])
        assert rotated.returncode == 0, rotated.stderr
        new = rotated.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1]
        assert new
        assert new != old
        assert "takes the new token up" in rotated.stderr
        # The server re-reads a rotated token at most once a second: wait for it.
        deadline = time.monotonic() + 10
        while call(f"{server.url}/api/v1/contacts", new)[0] != 200:
            assert time.monotonic() < deadline, "the new token was never accepted"
            time.sleep(0.1)
        assert call(f"{server.url}/api/v1/contacts", old)[0] == 401
    finally:
        assert server.stop(signal.SIGTERM) == 0


def run_with(
    workdir: Path, command: list[str], **environment: str
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``workdir`` with the test's environment, no credentials, and
    ``environment`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WA_", "API_", "DATABASE_"))}
    env.update(PYTHONPATH=str(ROOT), **environment)
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=30)


def test_settings_that_do_not_validate_stop_the_start_naming_each_variable(
    workdir: Path,
) -> None:
    finished = run_with(
        workdir,
        [sys.executable, str(ROOT / "webhook_server.py"), "--port", str(free_port())],
        DATABASE_URL="mysql://127.0.0.1/test",
        OUTBOUND_RATE_LIMIT="fast",
    )
    assert finished.returncode == 2
    lines = finished.stderr.splitlines()
    assert lines[0] == "optinflow did not start: the settings are invalid:", finished.stderr
    assert any(line.startswith("  DATABASE_URL: DATABASE_URL must be sqlite:///") for line in lines)
    assert any(line.startswith("  OUTBOUND_RATE_LIMIT: ") for line in lines), finished.stderr
    assert "Traceback" not in finished.stderr
    assert list(workdir.iterdir()) == [], "nothing is created when the settings are wrong"


def test_the_tools_name_wrong_settings_too(workdir: Path) -> None:
    finished = run_with(
        workdir,
        [sys.executable, "-m", "engine", "api-token", "--rotate"],
        DEFAULT_REGION="Atlantis",
    )
    assert finished.returncode == 2
    assert finished.stderr.splitlines() == [
        "the settings are invalid:",
        "  DEFAULT_REGION: unknown region code 'Atlantis' (use ISO 3166 alpha-2, e.g. US)",
    ]
    assert list(workdir.iterdir()) == []

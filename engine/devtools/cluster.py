"""Several optinflow processes on loopback over one database: web, workers and a Cloud API
simulator of their own, each a real process, as a deployment runs them.

The multi-process tests and ``bench/scale_out.py`` use it::

    with Cluster(database_url, workdir) as cluster:
        simulator = cluster.simulator()
        web = cluster.web()                # OUTBOUND_WORKER=false: routes only
        cluster.worker(); cluster.worker()
        ...
        cluster.nodes[1].kill()            # kill -9

Every process gets the same settings (``API_TOKEN``, ``DATABASE_URL``, the simulator as
the Graph API host, its webhook the first web process's), plus what each call adds. The
simulator's inspection routes (``/simulator/messages``, ``/stats``, ``/failures``) need
``API_TOKEN`` as Bearer, as the REST API does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
API_TOKEN = "cluster-api-token"
APP_SECRET = "cluster-app-secret"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    """One process of the cluster."""

    role: str
    process: subprocess.Popen[str]
    port: int | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def wait_for_line(self, prefix: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) for line in self.output):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        tail = "\n".join(self.output[-40:])
        raise RuntimeError(f"the {self.role} process did not say {prefix!r}:\n{tail}")

    def wait_for_port(self, timeout: float = START_TIMEOUT) -> None:
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        tail = "\n".join(self.output[-40:])
        raise RuntimeError(f"the {self.role} process did not listen on {self.port}:\n{tail}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """``kill -9``: no clean shutdown, leases left to lapse."""
        self.stop(signal.SIGKILL)


SAMPLE_PHONE_NUMBER_ID = "106540352242922"


class Cluster:
    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.nodes: list[Node] = []
        self.graph_base: str | None = None
        self._webhook_port = free_port()  # the first web process's, known in advance
        self._first_web = True
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("WA_", "API_", "DATABASE_", "OUTBOUND_", "PUBLIC_"))
        }
        base.update(
            {
                "DATABASE_URL": database_url,
                "API_TOKEN": API_TOKEN,
                "WA_APP_SECRET": APP_SECRET,
                "TEMPLATES_FILE": str(ROOT / "fixtures" / "templates.yaml"),
                "FLOWS_DIR": str(ROOT / "flows"),
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                # The business number of Meta's sample notifications, which the tests
                # and benches post: a message to a number not registered is not answered.
                "WA_PHONE_NUMBER_ID": SAMPLE_PHONE_NUMBER_ID,
            }
        )
        base.update(env or {})
        self.env = base

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self._webhook_port}/webhook"

    def _start(self, role: str, argv: list[str], env: Mapping[str, str], port: int | None) -> Node:
        process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=self.workdir,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        node = Node(role, process, port)
        threading.Thread(target=node._collect, daemon=True).start()
        self.nodes.append(node)
        return node

    def simulator(self, *, status_delay_seconds: float | None = None) -> Node:
        """The Cloud API simulator in a process of its own; every process started after
        it sends to it, and it posts status notifications to the first web process."""
        port = free_port()
        argv = ["-m", "engine.devtools.simulator", "--port", str(port)]
        argv += ["--webhook-url", self.webhook_url, "--app-secret", APP_SECRET]
        argv += ["--database-url", self.database_url]
        argv += ["--api-token", API_TOKEN]  # its inspection routes, as the REST API's
        if status_delay_seconds is not None:
            argv += ["--status-delay-seconds", str(status_delay_seconds)]
        node = self._start("simulator", argv, {}, port)
        node.wait_for_line("simulator listening on")
        node.wait_for_port()
        self.graph_base = f"{node.url}/simulator"
        return node

    def _graph_env(self) -> dict[str, str]:
        return {} if self.graph_base is None else {"WA_GRAPH_BASE": self.graph_base}

    def web(self, *, background: bool = False, **env: str) -> Node:
        """A web process: routes only, unless ``background`` (then it also works)."""
        port = self._webhook_port if self._first_web else free_port()
        self._first_web = False
        settings = {
            "OUTBOUND_WORKER": "true" if background else "false",
            **self._graph_env(),
            **env,
        }
        argv = [str(ROOT / "webhook_server.py"), "--port", str(port)]
        node = self._start("web", argv, settings, port)
        node.wait_for_line("optinflow is serving")
        node.wait_for_port()
        return node

    def worker(self, **env: str) -> Node:
        node = self._start("worker", ["-m", "engine", "worker"], {**self._graph_env(), **env}, None)
        node.wait_for_line("optinflow worker is running")
        return node

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

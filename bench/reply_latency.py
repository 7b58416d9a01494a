"""Reply latency: from a customer's message posted to the webhook to the bot's answer
posted to the Cloud API, with real processes. Target: a median within 50 ms.

Three set-ups, each a fresh database and real processes (``engine.devtools.cluster``):

- *one process*: ``webhook_server.py`` with the background parts and its built-in
  simulator;
- *web + worker*: a web process (``OUTBOUND_WORKER=false``), a ``python -m engine
  worker`` and the simulator in a process of its own: the hand-off and the reply cross
  processes through the store's announcements;
- *web + worker, PostgreSQL*: the same on a fresh PostgreSQL database (``LISTEN`` /
  ``NOTIFY`` carry the announcements).

Each new customer says "hi" (one at a time) and the bot answers with the welcome menu;
the latency is the simulator's received time of the answer less the time the webhook
was posted (one machine, one clock). Prints the median and p99 of each set-up.

Run: ``.venv/bin/python -m bench.reply_latency [--customers 100]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.scale_out import postgres_backend
from engine.devtools.cluster import API_TOKEN, APP_SECRET, Cluster, Node

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "text.json"


def notification(sender: str, index: int) -> bytes:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    value["messages"][0].update(
        {
            "id": f"wamid.latency.{index}",
            "from": sender,
            "text": {"body": "hi"},
            # Sent now: the 24-hour window is measured from the customer's message.
            "timestamp": str(int(time.time())),
        }
    )
    return json.dumps(data).encode()


def post(url: str, body: bytes) -> None:
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def answered_at(simulator_url: str, to: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"{simulator_url}/simulator/messages?to={to}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=10) as answer:
            messages = json.loads(answer.read())["messages"]
        if messages:
            return datetime.fromisoformat(messages[0]["received_at"]).timestamp()
        time.sleep(0.002)
    raise RuntimeError(f"no answer to {to}")


def measure(web: Node, simulator_url: str, customers: int) -> list[float]:
    latencies = []
    for index in range(customers):
        sender = f"1650556{index:04d}"
        started = time.time()
        post(f"{web.url}/webhook", notification(sender, index))
        latencies.append(answered_at(simulator_url, sender) - started)
    return latencies


def report(name: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name}: median {statistics.median(ordered) * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms over {len(ordered)} replies"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's URL; the bench makes a database on it and drops it",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        with Cluster(f"sqlite:///{workdir / 'one.db'}", workdir) as cluster:
            web = cluster.web(background=True)
            report("one process", measure(web, web.url, args.customers))
        with Cluster(f"sqlite:///{workdir / 'two.db'}", workdir) as cluster:
            simulator = cluster.simulator()
            web = cluster.web()
            cluster.worker()
            report("web + worker", measure(web, simulator.url, args.customers))
        with postgres_backend(args.postgres) as backend, Cluster(backend.url, workdir) as cluster:
            simulator = cluster.simulator()
            web = cluster.web()
            cluster.worker()
            report("web + worker, PostgreSQL", measure(web, simulator.url, args.customers))


if __name__ == "__main__":
    main()

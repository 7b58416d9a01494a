"""Two web processes and two workers on one database, as a deployment of several machines
runs them: a broadcast is sent exactly once, a customer's messages are answered in the
order they wrote them whichever web process received each, two agents racing for one
conversation through two web processes leave exactly one owner, and a worker killed in
the middle of a broadcast loses nothing and sends nothing twice but what it counts
ambiguous.

Every process is real (``engine.devtools.cluster``), on loopback, on the database of the
backend under test (a SQLite file, or a fresh PostgreSQL database).
"""

from __future__ import annotations

import threading
import urllib.error
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.devtools.cluster import Cluster, Node
from tests.databases import database_url
from tests.process_support import customer_says, received, request, wait_until

ECHO_FLOW = """\
id: echo
name: Echo
triggers:
  default: true
steps:
  say:
    kind: send
    text: "echo {{ reply.text }}"
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(database_url(tmp_path / "optinflow.db"), tmp_path) as running:
        yield running


def import_contacts(web: Node, count: int, tag: str) -> None:
    lines = ["phone,name,tags"]
    lines += [f"+1 650 {400 + n // 10000:03d} {n % 10000:04d},C{n},{tag}" for n in range(count)]
    status, answer = request(
        f"{web.url}/api/v1/contacts/import",
        raw=("\n".join(lines) + "\n").encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, answer
    assert answer["created"] == count, answer


def start_broadcast(web: Node, tag: str) -> str:
    status, broadcast = request(
        f"{web.url}/api/v1/broadcasts",
        {
            "name": f"to {tag}",
            "send_at": datetime.now(UTC).isoformat(),
            "template": {"name": "order_update", "language": "en_US", "params": ["B-7", "ready"]},
            "tags": [tag],
        },
    )
    assert status == 201, broadcast
    return str(broadcast["id"])


def sends_by_recipient(simulator: Node) -> Counter[str]:
    return Counter(r["to"] for r in received(simulator) if r["wamid"])


def broadcast_counts(web: Node, broadcast: str) -> dict[str, int]:
    _, state = request(f"{web.url}/api/v1/broadcasts/{broadcast}")
    counts: dict[str, int] = state["counts"]
    return counts


def test_a_broadcast_is_sent_exactly_once_by_two_workers_behind_two_web_processes(
    cluster: Cluster,
) -> None:
    recipients = 5000
    simulator = cluster.simulator()
    first, second = cluster.web(), cluster.web()
    for _ in range(2):
        cluster.worker(OUTBOUND_RATE_LIMIT="1000", CAMPAIGN_POLL_SECONDS="0.2")
    import_contacts(first, recipients, "everyone")
    broadcast = start_broadcast(second, "everyone")

    wait_until(
        lambda: sum(sends_by_recipient(simulator).values()) >= recipients,
        "every recipient sent to",
        timeout=180,
    )
    sends = sends_by_recipient(simulator)
    assert len(sends) == recipients
    assert max(sends.values()) == 1, "nobody got the broadcast twice"

    def settled() -> dict[str, int] | None:
        counts = broadcast_counts(first, broadcast)
        left = sum(counts.get(state, 0) for state in ("queued", "sending"))
        return counts if left == 0 else None

    counts = wait_until(settled, "no message left queued or sending", timeout=60)
    assert counts.get("failed", 0) == 0, counts
    assert sum(counts.get(s, 0) for s in ("sent", "delivered", "read")) == recipients, counts


def test_a_customer_s_messages_are_answered_in_order_whichever_web_process_received_them(
    tmp_path: Path,
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "echo.yaml").write_text(ECHO_FLOW)
    customers = [f"1650555{n:04d}" for n in range(6)]
    said = [f"m{k}" for k in range(8)]
    url = database_url(tmp_path / "optinflow.db")
    with Cluster(url, tmp_path, env={"FLOWS_DIR": str(flows)}) as cluster:
        simulator = cluster.simulator()
        webs = [cluster.web(), cluster.web()]
        cluster.worker()
        cluster.worker()

        def converse(customer: str) -> None:
            for k, text in enumerate(said):  # each answered 200 before the next is written
                customer_says(webs[k % 2], text, f"wamid.{customer}.{k}", sender=customer)

        with ThreadPoolExecutor(len(customers)) as pool:
            list(pool.map(converse, customers))

        def echoes() -> dict[str, list[str]] | None:
            by_customer: dict[str, list[str]] = {c: [] for c in customers}
            for record in received(simulator):
                if record["wamid"] and record["to"] in by_customer:
                    by_customer[record["to"]].append(record["body"]["text"]["body"])
            done = all(len(texts) >= len(said) for texts in by_customer.values())
            return by_customer if done else None

        answered = wait_until(echoes, "every message echoed", timeout=90)
    for customer in customers:
        assert answered[customer] == [f"echo {text}" for text in said], customer


def test_two_agents_taking_over_through_two_web_processes_at_once_leave_one_owner(
    cluster: Cluster,
) -> None:
    cluster.simulator()
    first, second = cluster.web(), cluster.web()
    cluster.worker()
    for name in ("ann", "bob"):
        status, _ = request(
            f"{first.url}/api/v1/agents",
            {"name": name.title(), "email": f"{name}@example.com", "password": "a long password"},
        )
        assert status == 201
    customers = [f"1650556{n:04d}" for n in range(10)]
    for n, customer in enumerate(customers):
        customer_says(first, "hello there", f"wamid.race.{n}", sender=customer)

    def take_over(web: Node, agent: str, customer: str, start: threading.Barrier) -> int:
        start.wait()
        try:
            status, _ = request(
                f"{web.url}/api/v1/conversations/{customer}/takeover", {"agent": agent}
            )
        except urllib.error.HTTPError as refused:
            return refused.code
        return status

    with ThreadPoolExecutor(2) as pool:
        for customer in customers:
            start = threading.Barrier(2)
            racers = [(first, "ann@example.com"), (second, "bob@example.com")]
            outcomes = [
                answer.result()
                for answer in [pool.submit(take_over, w, a, customer, start) for w, a in racers]
            ]
            assert sorted(outcomes) == [200, 409], (customer, outcomes)
            winner = racers[outcomes.index(200)][1]
            _, conversation = request(f"{second.url}/api/v1/conversations/{customer}")
            assert (conversation["owner"], conversation["agent"]) == ("agent", winner)


def test_a_worker_killed_mid_broadcast_loses_nothing_and_sends_twice_only_what_it_counts(
    cluster: Cluster,
) -> None:
    recipients = 1500
    settings = {
        "OUTBOUND_RATE_LIMIT": "250",
        "OUTBOUND_NUMBER_LEASE_SECONDS": "2",
        "OUTBOUND_LEASE_SECONDS": "3",
        "CAMPAIGN_POLL_SECONDS": "0.2",
    }
    simulator = cluster.simulator()
    web = cluster.web()
    workers = [cluster.worker(**settings), cluster.worker(**settings)]
    import_contacts(web, recipients, "killed")
    broadcast = start_broadcast(web, "killed")
    wait_until(
        lambda: sum(sends_by_recipient(simulator).values()) >= 300, "the broadcast under way"
    )
    holding = [w for w in workers if any("sending for business number" in o for o in w.output)]
    victim = holding[0] if holding else workers[0]
    victim.kill()

    wait_until(
        lambda: len(sends_by_recipient(simulator)) >= recipients,
        "every recipient sent to after the kill",
        timeout=120,
    )

    def settled() -> dict[str, Any] | None:
        counts = broadcast_counts(web, broadcast)
        left = sum(counts.get(state, 0) for state in ("queued", "sending"))
        return counts if left == 0 else None

    counts = wait_until(settled, "no message left queued or sending", timeout=60)
    assert counts.get("failed", 0) == 0, counts
    twice = sum(n - 1 for n in sends_by_recipient(simulator).values() if n > 1)
    _, report = request(f"{web.url}/api/v1/reports/messages?channel=broadcast&limit=10000")
    ambiguous = sum(row["ambiguous_attempts"] for row in report["rows"])
    assert twice <= ambiguous, f"{twice} sent twice, {ambiguous} counted ambiguous"

"""Talking to a cluster of real processes in tests: requests with the API token, a
customer's signed message, what the simulator received, waiting for a condition."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine.devtools.cluster import API_TOKEN, APP_SECRET, Node
from engine.store import POSTGRES_SCHEMES
from tests.databases import first_value
from tests.inbound_support import text_notification

T = TypeVar("T")
CUSTOMER = "16505550100"


def wait_until(condition: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def request(
    url: str, body: Any = None, *, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = urllib.request.Request(
        url,
        data=data,
        headers={"Authorization": f"Bearer {API_TOKEN}", **(headers or {})},
        method="GET" if data is None else "POST",
    )
    with urllib.request.urlopen(sent, timeout=10) as answer:
        return answer.status, json.loads(answer.read() or b"null")


def customer_says(web: Node, text: str, wamid: str, sender: str = CUSTOMER) -> None:
    notification = text_notification(text, wamid=wamid, sender=sender, sent_at=datetime.now(UTC))
    body = json.dumps(notification).encode()
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, _ = request(
        f"{web.url}/webhook",
        raw=body,
        headers={"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"},
    )
    assert status == 200


def received(simulator: Node) -> list[dict[str, Any]]:
    _, answer = request(f"{simulator.url}/simulator/messages")
    messages: list[dict[str, Any]] = answer["messages"] if isinstance(answer, dict) else answer
    return messages


def send_api_messages(web: Node, count: int) -> list[str]:
    def one(index: int) -> str:
        body = {
            "to": f"+1 650 555 {index:04d}",
            "template": {"name": "order_update", "language": "en_US", "params": ["A-1", "sent"]},
        }
        status, answer = request(f"{web.url}/api/v1/messages", body)
        assert status == 202, answer
        return str(answer["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def accepted(simulator: Node) -> Counter[str]:
    return Counter(r["biz_opaque_callback_data"] for r in received(simulator) if r["wamid"])


def number_holder(database: str) -> str | None:
    """The worker whose lease of the (one) business number has not lapsed: one query
    straight on the database, quick enough to poll while the workers send."""
    now = "now()" if database.startswith(POSTGRES_SCHEMES) else "strftime('%Y-%m-%dT%H:%M:%fZ')"
    owner = first_value(database, f"SELECT owner FROM number_leases WHERE expires_at > {now}")
    return None if owner is None else str(owner)

"""Integration callbacks: every status change of an API message reaches its callback URL,
signed, in order, retried until the integration answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from engine.clock import FrozenClock
from engine.models.contact import ConsentSource
from engine.models.content import TextContent
from engine.models.message import Channel, MessageStatus
from engine.outbound.callbacks import DELIVERY_HEADER, SIGNATURE_HEADER
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Store, Tx
from engine.store.callbacks import CallbackOutcome
from engine.store.contacts import Consent, NewContact
from engine.web.keys import CALLBACKS, STORE
from engine.whatsapp.signature import verify
from tests.outbound_support import Outbound, eventually, start_outbound

ANN = "16505551234"


@dataclass
class Integration:
    """An API client's endpoint: answers 500 to the first ``refuse`` deliveries."""

    refuse: int = 0
    seen: list[tuple[str, str, dict[str, Any], bytes, bool]] = field(default_factory=list)
    url: str = ""

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        accept = self.refuse <= 0
        self.refuse -= 1
        headers = request.headers
        self.seen.append(
            (headers[DELIVERY_HEADER], headers[SIGNATURE_HEADER], json.loads(raw), raw, accept)
        )
        return web.Response(status=204 if accept else 500)

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of accepted deliveries (each delivery id once)."""
        return [body for _, _, body, _, accepted in self.seen if accepted]


@pytest.fixture
async def integration(aiohttp_server: Any) -> Integration:
    integration = Integration()
    app = web.Application()
    app.router.add_post("/hooks/whatsapp", integration.receive)
    server = await aiohttp_server(app)
    integration.url = str(server.make_url("/hooks/whatsapp"))
    return integration


@pytest.fixture
async def outbound(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Outbound:
    return await start_outbound(aiohttp_client, tmp_path, clock)


async def secret(outbound: Outbound) -> str:
    answer = await (await outbound.client.get("/api/v1/callbacks/secret")).json()
    return str(answer["secret"])


async def test_each_status_is_posted_signed_in_order_and_retried(
    outbound: Outbound, integration: Integration
) -> None:
    integration.refuse = 1
    accepted = await outbound.send(
        to=ANN,
        template={"name": "order_update", "language": "en_US", "params": ["A-1", "ready"]},
        callback_url=integration.url,
    )
    await outbound.wait_for(accepted["id"], "read")
    await refused_once(outbound, accepted["id"])
    assert integration.delivered() == [], "the first attempt was refused"

    outbound.advance(seconds=2)  # the first retry waits OUTBOUND callback backoff (2 s)

    async def all_delivered() -> bool:
        return [b["status"] for b in integration.delivered()] == ["sent", "delivered", "read"]

    await eventually(all_delivered, what="sent, delivered and read callbacks")
    key = await secret(outbound)
    for _, signature, _, raw, _ in integration.seen:
        assert verify(raw, signature, key)
    first_id, retried_id = integration.seen[0][0], integration.seen[1][0]
    assert first_id == retried_id, "a retry carries the same delivery id"
    body = integration.delivered()[0]
    assert body["id"] == accepted["id"]
    assert body["to"] == ANN
    assert body["wamid"].startswith("wamid.")
    assert body["failure"] is None

    async def recorded() -> dict[str, Any] | None:
        message = await outbound.message(accepted["id"])
        states = [(c["status"], c["state"]) for c in message["callbacks"]]
        expected = [("sent", "delivered"), ("delivered", "delivered"), ("read", "delivered")]
        return message if states == expected else None

    message = await eventually(recorded, what="the deliveries to be recorded as delivered")
    assert message["callbacks"][0]["attempts"] == 2


async def test_a_failure_at_enqueue_and_a_change_from_any_path_are_posted(
    outbound: Outbound, integration: Integration
) -> None:
    await outbound.client.post("/api/v1/contacts", json={"wa_id": ANN, "marketing_opt_in": False})
    refused = await outbound.send(
        to=ANN,
        template={"name": "spring_sale", "language": "en_US", "params": ["Ann", "20%"]},
        callback_url=integration.url,
    )
    assert refused["status"] == "failed"

    async def posted() -> list[dict[str, Any]]:
        return integration.delivered()

    [failed] = await eventually(posted, what="the marketing_opt_out callback")
    assert failed["status"] == "failed"
    assert failed["failure"]["code"] == "marketing_opt_out"

    # Another part of the product (the webhook, say) changes a status directly in the store.
    sent = await outbound.send(
        to=ANN,
        template={"name": "order_update", "language": "en_US", "params": ["A-2", "ready"]},
        callback_url=integration.url,
    )
    await outbound.wait_for(sent["id"], "read")
    await outbound.app[STORE].write(
        lambda tx: tx.messages.change_status(
            sent["id"], MessageStatus.PLAYED, at=outbound.clock.now() + timedelta(seconds=1)
        )
    )
    outbound.app[CALLBACKS].wake()

    async def played() -> bool:
        return any(b["status"] == "played" for b in integration.delivered())

    await eventually(played, what="the played callback")
    statuses = [b["status"] for b in integration.delivered() if b["id"] == sent["id"]]
    assert statuses == ["sent", "delivered", "read", "played"]


async def test_a_dead_endpoint_is_abandoned_after_the_last_try(
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    integration: Integration,
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock, CALLBACK_MAX_TRIES=2)
    integration.refuse = 100
    await outbound.client.post("/api/v1/contacts", json={"wa_id": ANN, "marketing_opt_in": False})
    refused = await outbound.send(
        to=ANN,
        template={"name": "spring_sale", "language": "en_US", "params": ["Ann", "20%"]},
        callback_url=integration.url,
    )
    await refused_once(outbound, refused["id"])
    outbound.advance(seconds=2)

    async def abandoned() -> bool:
        message = await outbound.message(refused["id"])
        return [c["state"] for c in message["callbacks"]] == ["abandoned"]

    await eventually(abandoned, what="the delivery to be abandoned")
    message = await outbound.message(refused["id"])
    assert message["callbacks"][0] == {
        "status": "failed",
        "state": "abandoned",
        "attempts": 2,
        "error": "HTTP 500",
    }
    assert len(integration.seen) == 2


async def refused_once(outbound: Outbound, message_id: str) -> None:
    """Wait until the first refused delivery is recorded (its retry time is set then)."""

    async def recorded() -> bool:
        callbacks = (await outbound.message(message_id))["callbacks"]
        return bool(callbacks) and callbacks[0]["error"] == "HTTP 500"

    await eventually(recorded, what="the refused delivery to be recorded")


async def test_an_outcome_after_the_lease_was_taken_over_is_ignored(
    store: Store, clock: FrozenClock
) -> None:
    """Two workers: the first one's post outlives its lease, the second claims the delivery
    again; only the second one's outcome counts."""

    async def sent_message(tx: Tx) -> str:
        contact = await tx.contacts.create(
            NewContact(wa_id=ANN, marketing_opt_in=True), Consent(ConsentSource.API)
        )
        await tx.conversations.record_inbound(contact.id, clock.now())
        request = OutboundRequest(
            contact, Channel.API, TextContent(body="hi"), callback_url="http://hook"
        )
        enqueued = await enqueue(tx, request, now=clock.now())
        assert enqueued.message is not None
        await tx.messages.change_status(enqueued.message.id, MessageStatus.SENT, at=clock.now())
        return enqueued.message.id

    message_id = await store.write(sent_message)
    lease = timedelta(seconds=60)

    async def claim(owner: str) -> list[int]:
        now = clock.now()
        claimed = await store.write(
            lambda tx: tx.callbacks.claim(owner, now=now, lease_until=now + lease, limit=10)
        )
        return [delivery.id for delivery in claimed]

    [first] = await claim("w1")
    assert await claim("w2") == [], "a held lease is not claimed again"
    clock.advance(seconds=lease.total_seconds() + 1)
    assert await claim("w2") == [first], "a lapsed lease is taken over"

    late = CallbackOutcome(first, delivered=False, error="HTTP 500")  # would abandon it
    await store.write(lambda tx: tx.callbacks.record("w1", [late], now=clock.now()))
    async with store.read() as tx:
        [record] = await tx.callbacks.for_message(message_id)
    assert (record.state, record.attempts, record.last_error) == ("pending", 2, None)

    delivered = CallbackOutcome(first, delivered=True)
    await store.write(lambda tx: tx.callbacks.record("w2", [delivered], now=clock.now()))
    async with store.read() as tx:
        [record] = await tx.callbacks.for_message(message_id)
    assert (record.state, record.attempts) == ("delivered", 2)

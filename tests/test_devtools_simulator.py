"""The built-in Cloud API simulator: Meta's checks, Meta's answers, Meta's signed statuses."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from engine.catalogue import load_templates
from engine.clock import FrozenClock
from engine.devtools.simulator import SIMULATOR_TOKEN, Simulator, create_simulator_app
from engine.models.contact import ConsentSource
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.whatsapp.signature import HEADER, verify
from tests.conftest import AUTH, FIXTURES, make_app, make_settings
from tests.outbound_support import APP_SECRET, eventually

PHONE = "100000000000001"
SEND = f"/simulator/v21.0/{PHONE}/messages"
TOKEN = {"Authorization": f"Bearer {SIMULATOR_TOKEN}"}
INSPECT_TOKEN = "inspect-token"
INSPECT = {"Authorization": f"Bearer {INSPECT_TOKEN}"}
ANN = "16505551234"


class Hook:
    """Where the simulator posts its status notifications."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, Any], str | None, bytes]] = []

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.posts.append((json.loads(raw), request.headers.get(HEADER), raw))
        return web.Response(text="ok")

    def statuses(self) -> list[dict[str, Any]]:
        return [doc["entry"][0]["changes"][0]["value"]["statuses"][0] for doc, _, _ in self.posts]


@pytest.fixture
async def catalogue(store: Store) -> Store:
    async def load(tx: Tx) -> None:
        for template in load_templates(FIXTURES / "templates.yaml"):
            await tx.templates.put(template)

    await store.write(load)
    return store


@pytest.fixture
async def hook(aiohttp_server: Any) -> tuple[Hook, str]:
    hook = Hook()
    app = web.Application()
    app.router.add_post("/webhook", hook.receive)
    server = await aiohttp_server(app)
    return hook, str(server.make_url("/webhook"))


@pytest.fixture
async def simulated(
    aiohttp_client: Any, catalogue: Store, clock: FrozenClock, hook: tuple[Hook, str]
) -> tuple[TestClient[Any, Any], Simulator, Hook]:
    simulator = Simulator(
        store=catalogue,
        clock=clock,
        phone_number_id=PHONE,
        webhook_url=hook[1],
        app_secret=APP_SECRET,
        access_token=SIMULATOR_TOKEN,
        status_delay_seconds=0,
    )
    app = create_simulator_app(simulator, api_token=INSPECT_TOKEN)
    client = await aiohttp_client(app, headers=INSPECT)
    return client, simulator, hook[0]


def template(name: str, *params: str, language: str = "en_US") -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "to": ANN,
        "type": "template",
        "template": {"name": name, "language": {"code": language}},
    }
    if params:
        body["template"]["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
        ]
    return body


async def post(
    client: TestClient[Any, Any], body: Any, headers: dict[str, str] = TOKEN
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(SEND, data=data, headers=headers)
    return response.status, await response.json()


async def test_accepts_a_template_and_posts_signed_statuses_in_metas_shape(
    simulated: tuple[TestClient[Any, Any], Simulator, Hook], clock: FrozenClock
) -> None:
    client, simulator, hook = simulated
    body = template("order_update", "A-17", "shipped") | {"biz_opaque_callback_data": "our-id"}
    status, answer = await post(client, body)
    assert status == 200
    wamid = answer["messages"][0]["id"]
    assert answer == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": ANN, "wa_id": ANN}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }
    await simulator.settle()
    assert [s["status"] for s in hook.statuses()] == ["sent", "delivered", "read"]
    for _, signature, raw in hook.posts:
        assert verify(raw, signature, APP_SECRET)
    document = hook.posts[0][0]
    assert document["object"] == "whatsapp_business_account"
    change = document["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["messaging_product"] == "whatsapp"
    assert change["value"]["metadata"]["phone_number_id"] == PHONE
    assert hook.statuses()[0] == {
        "id": wamid,
        "status": "sent",
        "timestamp": str(int(clock.now().timestamp())),
        "recipient_id": ANN,
        "biz_opaque_callback_data": "our-id",
        "pricing": {
            "billable": True,
            "pricing_model": "PMP",
            "category": "utility",
            "type": "regular",
        },
    }
    assert "pricing" not in hook.statuses()[2], "read statuses carry no pricing"

    listed = await (await client.get("/simulator/messages")).json()
    [entry] = listed["messages"]
    assert (entry["wamid"], entry["to"], entry["type"]) == (wamid, ANN, "template")
    assert entry["statuses"] == ["sent", "delivered", "read"]
    assert entry["body"] == body


async def test_checks_requests_as_meta_does(
    simulated: tuple[TestClient[Any, Any], Simulator, Hook],
) -> None:
    client, simulator, hook = simulated
    cases: list[tuple[Any, dict[str, str], int, int, str]] = [
        (template("order_update", "a", "b"), {}, 401, 190, "access token"),
        (
            template("order_update", "a", "b"),
            {"Authorization": "Bearer someone-elses"},
            401,
            190,
            "Error validating access token",
        ),
        (b"{not json", TOKEN, 400, 100, "not JSON"),
        (
            {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}},
            TOKEN,
            400,
            100,
            "exactly one of to and recipient",
        ),
        (
            {"messaging_product": "whatsapp", "to": ANN, "type": "text"},
            TOKEN,
            400,
            100,
            "type text needs the text object",
        ),
        (
            {"messaging_product": "whatsapp", "to": ANN, "type": "text", "text": {}},
            TOKEN,
            400,
            131008,
            "text.body",
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": ANN,
                "type": "text",
                "text": {"body": "x", "colour": "red"},
            },
            TOKEN,
            400,
            100,
            "text.colour",
        ),
        (template("nope"), TOKEN, 404, 132001, "template name (nope) does not exist in en_US"),
        (template("order_update", language="fr"), TOKEN, 404, 132001, "does not exist in fr"),
        (
            template("order_update", "only one"),
            TOKEN,
            400,
            132000,
            "number of localizable_params (1) does not match the expected number of params (2)",
        ),
    ]
    for body, headers, status, code, words in cases:
        got_status, answer = await post(client, body, headers)
        assert (got_status, answer["error"]["code"]) == (status, code), body
        error = answer["error"]
        assert words in error["message"] + error.get("error_data", {}).get("details", ""), body
        assert error["type"] == "OAuthException"
        assert error["fbtrace_id"]
    wrong = await client.post(
        "/simulator/v21.0/999/messages", data=json.dumps(template("order_update")), headers=TOKEN
    )
    error = (await wrong.json())["error"]
    assert (wrong.status, error["code"], error["error_subcode"]) == (400, 100, 33)
    assert [r.wamid for r in simulator.received()] == [None] * (len(cases) + 1)
    await simulator.settle()
    assert hook.posts == [], "nothing refused is ever reported as sent"


async def test_free_form_needs_the_window_the_store_knows(
    simulated: tuple[TestClient[Any, Any], Simulator, Hook],
    catalogue: Store,
    clock: FrozenClock,
) -> None:
    client, simulator, hook = simulated
    text = {"messaging_product": "whatsapp", "to": ANN, "type": "text", "text": {"body": "hi"}}
    status, _ = await post(client, text)
    assert status == 200, "Meta accepts, then reports the failure"
    await simulator.settle()
    [failed] = hook.statuses()
    assert failed["status"] == "failed"
    assert failed["errors"][0]["code"] == 131047
    assert failed["errors"][0]["title"] == "Re-engagement message"
    assert "24 hours" in failed["errors"][0]["error_data"]["details"]

    async def wrote_just_now(tx: Tx) -> None:
        contact = await tx.contacts.create(
            NewContact(wa_id=ANN, marketing_opt_in=True), Consent(ConsentSource.INBOUND)
        )
        await tx.conversations.record_inbound(contact.id, clock.now())

    await catalogue.write(wrote_just_now)
    await post(client, text)
    await simulator.settle()
    assert [s["status"] for s in hook.statuses()[1:]] == ["sent", "delivered", "read"]
    assert hook.statuses()[1]["pricing"]["category"] == "service"


async def test_fails_chosen_recipients_on_request(
    simulated: tuple[TestClient[Any, Any], Simulator, Hook],
) -> None:
    client, simulator, hook = simulated
    bad = await client.post("/simulator/failures", json={"to": ANN, "code": "often"})
    assert bad.status == 422
    assert (await bad.json())["error"]["fields"][0]["field"].startswith("code")

    for rule in (
        {"to": ANN, "code": 130429, "times": 1},
        {"to": ANN, "code": 131050, "times": 1},
        {"to": ANN, "code": 500, "times": 1},
    ):
        assert (await client.post("/simulator/failures", json=rule)).status == 201
    listed = await (await client.get("/simulator/failures")).json()
    assert [r["code"] for r in listed["failures"]] == [130429, 131050, 500]

    body = template("order_update", "a", "b")
    assert (await post(client, body))[1]["error"]["code"] == 130429
    status, accepted = await post(client, body)
    assert status == 200, "131050 comes as a failed status, as from Meta"
    server_error = await client.post(SEND, data=json.dumps(body), headers=TOKEN)
    assert server_error.status == 500
    assert (await post(client, body))[0] == 200, "the rules are used up"
    await simulator.settle()
    failed = [s for s in hook.statuses() if s["status"] == "failed"]
    assert [(s["id"], s["errors"][0]["code"]) for s in failed] == [
        (accepted["messages"][0]["id"], 131050)
    ]

    stats = await (await client.get("/simulator/stats")).json()
    assert (stats["received"], stats["accepted"], stats["rejected"]) == (4, 2, 2)
    assert (await client.delete("/simulator/messages")).status == 204
    assert (await client.delete("/simulator/failures")).status == 204
    assert (await (await client.get("/simulator/messages")).json())["messages"] == []


async def test_unsigned_without_an_app_secret(
    aiohttp_client: Any, catalogue: Store, clock: FrozenClock, hook: tuple[Hook, str]
) -> None:
    simulator = Simulator(
        store=catalogue,
        clock=clock,
        phone_number_id=PHONE,
        webhook_url=hook[1],
        status_delay_seconds=0,
    )
    client = await aiohttp_client(create_simulator_app(simulator, api_token=None))
    await post(client, template("order_update", "a", "b"))
    await simulator.settle()
    assert hook[0].posts
    assert all(signature is None for _, signature, _ in hook[0].posts)


def test_the_server_points_its_client_at_the_simulator_only_without_a_token(
    tmp_path: Path,
) -> None:
    embedded = make_settings(tmp_path, PORT=9999)
    assert embedded.simulator_enabled
    assert embedded.graph_base == "http://127.0.0.1:9999/simulator"
    real = make_settings(tmp_path, WA_ACCESS_TOKEN="EAAG...")
    assert not real.simulator_enabled
    assert real.graph_base == "https://graph.facebook.com"
    routes = {r.resource.canonical for r in make_app(real).router.routes() if r.resource}
    assert not any(path.startswith("/simulator") for path in routes)


async def test_with_a_token_there_is_no_simulator(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, WA_ACCESS_TOKEN="EAAG...", OUTBOUND_WORKER=False)
    client = await aiohttp_client(make_app(settings, clock=clock), headers=AUTH)
    assert (await client.get("/simulator/messages")).status == 404


def test_the_embedded_server_sends_through_its_simulator(tmp_path: Path) -> None:
    import asyncio

    from tests.test_webhook_server import Server, call

    server = Server(tmp_path)
    try:
        token = server.token()
        status, accepted = call(
            f"{server.url}/api/v1/messages",
            token,
            {
                "to": "+1 650 555 1234",
                "template": {
                    "name": "order_update",
                    "language": "en_US",
                    "params": ["A-1", "ready"],
                },
            },
        )
        assert status == 202, accepted
        assert isinstance(accepted, dict)

        async def sent() -> bool:
            _, message = call(f"{server.url}/api/v1/messages/{accepted['id']}", token)
            return isinstance(message, dict) and message["status"] == "sent"

        asyncio.run(eventually(sent, what="the message to be sent through the simulator"))
        assert call(f"{server.url}/simulator/messages")[0] == 401
        _, received = call(f"{server.url}/simulator/messages", token)
        assert isinstance(received, dict)
        assert [m["to"] for m in received["messages"]] == ["16505551234"]
    finally:
        assert server.stop(signal.SIGTERM) == 0

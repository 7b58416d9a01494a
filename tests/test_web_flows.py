"""REST: GET /api/v1/flows and POST /api/v1/flows/reload; flows load at start, a broken
folder stops the start with every problem, a broken reload keeps the old flows running;
the server's bot handler answers "hi" with the welcome menu."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from engine.clock import FrozenClock
from engine.flows.flowset import FlowsInvalid
from engine.ids import new_id
from engine.inbound.handoff import Incoming
from engine.models.contact import ConsentSource
from engine.models.message import Channel, Direction, Message, MessageStatus
from engine.store import Tx
from engine.store.contacts import Consent, NewContact
from engine.store.messages import MessageFilter
from engine.web.keys import BOT_HANDLER, STORE
from tests.conftest import AUTH, ROOT, AiohttpClient, make_app, make_settings
from tests.flowkit import text

Client = TestClient[Any, Any]


async def test_the_flows_are_listed_with_their_triggers(client: Client) -> None:
    response = await client.get("/api/v1/flows")
    assert response.status == 200
    flows = {flow["id"]: flow for flow in (await response.json())["flows"]}
    assert set(flows) == {"consent", "handoff", "order_status", "welcome"}
    assert flows["welcome"]["triggers"] == {
        "keywords": ["hi", "hello", "hey", "hola", "menu"],
        "first_word": [],
        "default": True,
        "new_contact": False,
    }
    assert flows["welcome"]["file"] == "welcome.yaml"
    assert flows["order_status"]["triggers"]["first_word"] == ["order", "track"]


async def test_the_flows_routes_need_the_token(aiohttp_client: AiohttpClient, app: Any) -> None:
    anonymous = await aiohttp_client(app)
    assert (await anonymous.get("/api/v1/flows")).status == 401
    assert (await anonymous.post("/api/v1/flows/reload")).status == 401


async def say(client: Client, body: str) -> list[str]:
    """Deliver a customer's message to the server's bot handler; the bot's messages."""
    app = client.app
    assert app is not None
    store = app[STORE]

    async def arrive(tx: Tx) -> Incoming:
        contact, created = await tx.contacts.get_or_create(
            NewContact(marketing_opt_in=True, wa_id="16505550100", name="Bea"),
            Consent(ConsentSource.INBOUND),
        )
        conversation = await tx.conversations.record_inbound(contact.id, contact.created_at)
        message = Message(
            id=new_id(),
            direction=Direction.INBOUND,
            contact_id=contact.id,
            contact=contact.address,
            kind="text",
            text=body,
            status=MessageStatus.RECEIVED,
            created_at=contact.created_at,
            updated_at=contact.created_at,
        )
        return Incoming(message, contact, conversation, text(body), created)

    incoming = await store.write(arrive)
    await app[BOT_HANDLER].handle(incoming)
    async with store.read() as tx:
        sent = await tx.messages.find(MessageFilter(channel=Channel.BOT))
    return [m.text or "" for m in sent]


async def test_the_default_server_answers_hi_with_the_welcome_menu(client: Client) -> None:
    assert await say(client, "hi") == ["Hi Bea! How can we help you today?"]


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", folder)
    return folder


BROKEN = """\
id: welcome
name: Welcome menu
triggers: {keywords: [hi], default: true}
steps:
  menu:
    kind: ask
    text: "Hi {{ contact.name }"
  route:
    kind: branch
    cases: [{equals: x, next: nowhere}]
"""


async def test_a_broken_reload_answers_every_error_and_keeps_the_old_flows(
    aiohttp_client: AiohttpClient, tmp_path: Path, flows_dir: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, FLOWS_DIR=flows_dir)
    client = await aiohttp_client(make_app(settings, clock=clock), headers=AUTH)
    before = await (await client.get("/api/v1/flows")).json()

    (flows_dir / "welcome.yaml").write_text(BROKEN)
    response = await client.post("/api/v1/flows/reload")
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_flows"
    assert error["errors"] == [
        {
            "file": "welcome.yaml",
            "line": 5,
            "message": "ask step 'menu' has no `save_as`: name the variable that gets the answer",
        },
        {
            "file": "welcome.yaml",
            "line": 7,
            "message": "step 'menu', `text`: jinja2 syntax error: unexpected '}'",
        },
        {
            "file": "welcome.yaml",
            "line": 8,
            "message": "branch step 'route' has no `else`: add `else: <step>` for what no case "
            "takes",
        },
        {
            "file": "welcome.yaml",
            "line": 10,
            "message": "step 'route' goes to 'nowhere', which is not a step of this flow",
        },
    ]
    assert await (await client.get("/api/v1/flows")).json() == before
    # the old welcome menu still answers
    assert await say(client, "hi") == ["Hi Bea! How can we help you today?"]

    (flows_dir / "welcome.yaml").write_text(
        "id: welcome\nname: Short welcome\ntriggers: {keywords: [hi], default: true}\n"
        "steps:\n  hello: {kind: send, text: Hello again}\n"
    )
    reloaded = await client.post("/api/v1/flows/reload")
    assert reloaded.status == 200
    names = {flow["id"]: flow["name"] for flow in (await reloaded.json())["flows"]}
    assert names["welcome"] == "Short welcome"
    assert (await say(client, "hi"))[-1] == "Hello again"


async def test_a_broken_flows_folder_stops_the_start_with_every_problem(
    tmp_path: Path, flows_dir: Path, clock: FrozenClock
) -> None:
    (flows_dir / "welcome.yaml").write_text(BROKEN)
    settings = make_settings(tmp_path, FLOWS_DIR=flows_dir)
    with pytest.raises(FlowsInvalid) as raised:
        await start(make_app(settings, clock=clock))
    assert len(raised.value.problems) == 4
    assert "welcome.yaml:10: step 'route' goes to 'nowhere'" in str(raised.value)


async def test_a_missing_flows_folder_stops_the_start(tmp_path: Path, clock: FrozenClock) -> None:
    settings = make_settings(tmp_path, FLOWS_DIR=tmp_path / "nowhere")
    with pytest.raises(FlowsInvalid, match="the flows folder"):
        await start(make_app(settings, clock=clock))


async def start(app: web.Application) -> None:
    """Start a server that is expected to fail, and clean up what it opened."""
    server = TestServer(app)
    try:
        await server.start_server()
    finally:
        await server.close()


async def test_the_server_fires_ask_timeouts_in_the_background(
    client: Client, clock: FrozenClock
) -> None:
    assert await say(client, "hi") == ["Hi Bea! How can we help you today?"]
    clock.advance(hours=2)
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # the wakeup task polls every second; wait for it with a bounded deadline
        app = client.app
        assert app is not None
        async with app[STORE].read() as tx:
            sent = [m.text for m in await tx.messages.find(MessageFilter(channel=Channel.BOT))]
        if len(sent) == 2 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert sent == [
        "Hi Bea! How can we help you today?",
        "We are here whenever you need us. Just say hi!",
    ]

"""The whole product through its front door, as wired by ``create_app``: Meta's signed
webhooks in, the bot's flows, the sender, the built-in Cloud API simulator, and the
simulator's status webhooks back in through the same ``POST /webhook``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from engine.web.keys import DISPATCHER
from engine.whatsapp.signature import HEADER, sign
from tests.inbound_support import ANN, load, settle, text_notification
from tests.outbound_support import APP_SECRET, Outbound, eventually, start_outbound

MENU = "Hi Ann! How can we help you today?"


def button_reply(choice_id: str, title: str, *, wamid: str) -> dict[str, Any]:
    """Meta's interactive button_reply notification from Ann, tapping ``choice_id``."""
    data = copy.deepcopy(load("interactive_button_reply"))
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update({"wa_id": ANN, "profile": {"name": "Ann"}})
    value["messages"][0].update({"id": wamid, "from": ANN})
    value["messages"][0]["interactive"]["button_reply"] = {"id": choice_id, "title": title}
    return data


def from_ann(body: str, *, wamid: str) -> dict[str, Any]:
    data = text_notification(body, wamid=wamid)
    data["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"] = {"name": "Ann"}
    return data


async def customer_sends(outbound: Outbound, notification: dict[str, Any]) -> None:
    raw = json.dumps(notification).encode()
    response = await outbound.client.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, APP_SECRET)},
    )
    assert response.status == 200, await response.text()


async def simulator_got(outbound: Outbound, count: int) -> list[dict[str, Any]]:
    """Wait until the simulator has accepted ``count`` messages for Ann; return them."""

    async def enough() -> list[dict[str, Any]] | None:
        accepted = [m for m in await outbound.received(ANN) if m["wamid"]]
        return accepted if len(accepted) >= count else None

    got: list[dict[str, Any]] = await eventually(enough, what=f"{count} messages to Ann")
    return got


def buttons_of(sent: dict[str, Any]) -> list[str]:
    action = sent["body"]["interactive"]["action"]
    return [button["reply"]["title"] for button in action["buttons"]]


async def consent_sources(outbound: Outbound) -> list[tuple[bool, str, str | None]]:
    history = await (await outbound.client.get(f"/api/v1/contacts/{ANN}/consent")).json()
    return [(e["marketing_opt_in"], e["source"], e["actor"]) for e in history]


async def test_hi_gets_the_welcome_menu_and_meta_s_statuses_come_back(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(outbound, from_ann("hi", wamid="wamid.e2e-hi"))

    [menu] = await simulator_got(outbound, 1)
    assert menu["type"] == "interactive"
    assert menu["body"]["interactive"]["body"]["text"] == MENU
    assert buttons_of(menu) == ["Order status", "See offers", "Talk to a person"]

    report = await (
        await outbound.client.get("/api/v1/reports/messages", params={"channel": "bot"})
    ).json()
    [row] = report["rows"]
    await outbound.wait_for(row["id"], "read")
    message = await outbound.message(row["id"])
    assert message["wamid"] == menu["wamid"]
    assert {"sent", "delivered", "read"} <= {change["status"] for change in message["history"]}


async def test_a_flow_runs_across_messages_and_a_restart_and_ignores_marketing_opt_out(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    first = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(first, from_ann("hi", wamid="wamid.e2e-1"))
    await simulator_got(first, 1)
    opted_out = await first.client.patch(
        f"/api/v1/contacts/{ANN}", json={"marketing_opt_in": False}
    )
    assert opted_out.status == 200

    # "See offers": the bot sends a MARKETING template to a contact who opted out (bots
    # ignore opt-in), then the consent flow asks its question.
    await customer_sends(first, button_reply("offers", "See offers", wamid="wamid.e2e-2"))
    _, offer, question = await simulator_got(first, 3)
    assert offer["type"] == "template"
    assert offer["body"]["template"]["name"] == "new_arrivals"
    assert offer["body"]["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Ann"}
    ]
    assert buttons_of(question) == ["Yes, please", "No, thanks"]
    await first.client.close()  # the server stops while the flow waits for Ann

    second = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(second, button_reply("yes", "Yes, please", wamid="wamid.e2e-3"))
    [thanks] = await simulator_got(second, 1)
    assert thanks["body"]["text"]["body"].startswith("Great, you are subscribed.")
    assert await consent_sources(second) == [
        (True, "inbound", None),
        (False, "api", "api"),
        (True, "bot", "consent"),
    ]


async def test_the_bot_is_silent_while_an_agent_owns_the_conversation(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(outbound, from_ann("hi", wamid="wamid.e2e-a"))
    await simulator_got(outbound, 1)
    agent = {"name": "Ann Lee", "email": "lee@example.com", "password": "a long passphrase"}
    assert (await outbound.client.post("/api/v1/agents", json=agent)).status == 201
    taken = await outbound.client.post(
        f"/api/v1/conversations/{ANN}/takeover", json={"agent": "lee@example.com"}
    )
    assert taken.status == 200

    await customer_sends(outbound, from_ann("hi", wamid="wamid.e2e-b"))
    await settle(outbound.app[DISPATCHER])
    view = await (await outbound.client.get(f"/api/v1/conversations/{ANN}")).json()
    inbound = [m["text"] for m in view["messages"] if m["direction"] == "inbound"]
    assert inbound == ["hi", "hi"], "the agent sees the customer's message"
    assert [m["channel"] for m in view["messages"] if m["direction"] == "outbound"] == ["bot"]

    # A stop word still changes consent, and its confirmation is sent.
    await customer_sends(outbound, from_ann("STOP", wamid="wamid.e2e-c"))
    _, confirmation = await simulator_got(outbound, 2)
    assert confirmation["body"]["text"]["body"].startswith("You will no longer receive marketing")
    assert (await consent_sources(outbound))[-1] == (False, "keyword", "customer")
    assert len(await outbound.received(ANN)) == 2, "the bot said nothing"

"""Opt-out intent in free text, end to end: Meta's signed webhooks into the real app, the
question out through the sender to the built-in Cloud API simulator, the customer's tap
back in, the consent ledger, the send rules, and the agents' console."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from markupsafe import escape

from engine.clock import FrozenClock
from engine.models.message import Direction
from engine.store.inbound import Outcome
from engine.store.messages import MessageFilter
from engine.web.keys import DISPATCHER, STORE
from tests.desk import PASSWORD, add_agent
from tests.inbound_support import ANN, settle
from tests.outbound_support import Outbound, eventually, start_outbound
from tests.test_app_conversation import button_reply, customer_sends, from_ann

STOP_ID, KEEP_ID = "CONSENT_INTENT_STOP", "CONSENT_INTENT_KEEP"
AGENT = "agent@example.com"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def button_ids(sent: dict[str, Any]) -> list[str]:
    return [b["reply"]["id"] for b in sent["body"]["interactive"]["action"]["buttons"]]


async def questions_to_ann(outbound: Outbound) -> list[dict[str, Any]]:
    return [
        m
        for m in await outbound.received(ANN)
        if m["type"] == "interactive" and STOP_ID in str(m["body"])
    ]


async def the_question(outbound: Outbound) -> dict[str, Any]:
    """Wait until the Cloud API (the simulator) has accepted one question for Ann."""

    async def asked() -> dict[str, Any] | None:
        found = [m for m in await questions_to_ann(outbound) if m["wamid"]]
        return found[0] if found else None

    question: dict[str, Any] = await eventually(asked, what="the opt-out question to Ann")
    return question


async def ledger(outbound: Outbound) -> list[dict[str, Any]]:
    response = await outbound.client.get(f"/api/v1/contacts/{ANN}/consent")
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def outbound_rows(outbound: Outbound) -> list[Any]:
    async with outbound.app[STORE].read() as tx:
        return [
            m for m in await tx.messages.find(MessageFilter()) if m.direction is Direction.OUTBOUND
        ]


async def outcome_of(outbound: Outbound, wamid: str) -> Outcome | None:
    async with outbound.app[STORE].read() as tx:
        message = await tx.messages.get_by_wamid(wamid)
        assert message is not None
        handoff = await tx.inbound.get_handoff(message.id)
    assert handoff is not None
    return handoff.outcome


async def answered_by_the_bot(outbound: Outbound, wamid: str) -> None:
    """The message reached the bot, which has answered it."""
    await settle(outbound.app[DISPATCHER])
    assert await outcome_of(outbound, wamid) is not Outcome.CONSUMED


async def test_a_confirmed_intent_opts_out_with_the_words_as_evidence_and_marketing_then_fails(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    words = "please stop sending me promotions"
    await customer_sends(outbound, from_ann(words, wamid="wamid.intent-1"))

    question = await the_question(outbound)
    assert button_ids(question) == [STOP_ID, KEEP_ID]
    assert "marketing" in question["body"]["interactive"]["body"]["text"]
    assert await outcome_of(outbound, "wamid.intent-1") is Outcome.CONSUMED, (
        "the question answers the message: the bot does not answer it too"
    )
    assert [e["source"] for e in await ledger(outbound)] == ["inbound"], "nothing silently"

    await customer_sends(outbound, button_reply(STOP_ID, "Stop promotions", wamid="wamid.tap"))

    async def opted_out() -> list[dict[str, Any]] | None:
        events = await ledger(outbound)
        return events if len(events) == 2 else None

    events = await eventually(opted_out, what="the opt-out in the ledger")
    last = events[-1]
    assert (last["marketing_opt_in"], last["source"], last["actor"]) == (
        False,
        "intent",
        "customer",
    )
    assert words in last["note"]
    assert "wamid.intent-1" in last["note"]
    assert STOP_ID in last["note"]
    assert "wamid.tap" in last["note"]

    async def confirmed() -> bool:
        return any(
            m["type"] == "text" and "no longer receive marketing" in m["body"]["text"]["body"]
            for m in await outbound.received(ANN)
        )

    await eventually(confirmed, what="the stop confirmation to reach the Cloud API")

    refused = await outbound.send(
        to=ANN, template={"name": "spring_sale", "language": "en_US", "params": ["Ann", "20%"]}
    )
    assert refused["status"] == "failed"
    assert refused["failure"]["code"] == "marketing_opt_out"


async def test_keep_changes_nothing_and_the_same_contact_is_not_asked_again_soon(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(outbound, from_ann("no more offers pls", wamid="wamid.k1"))
    await the_question(outbound)
    await customer_sends(outbound, button_reply(KEEP_ID, "Keep them", wamid="wamid.k2"))
    assert await outcome_of(outbound, "wamid.k2") is Outcome.CONSUMED
    before = len(await outbound_rows(outbound))

    await customer_sends(outbound, from_ann("no more offers pls!!", wamid="wamid.k3"))
    await answered_by_the_bot(outbound, "wamid.k3")
    rows = await outbound_rows(outbound)
    assert all(STOP_ID not in str(row.payload) for row in rows[before:]), "asked only once"
    assert len(await questions_to_ann(outbound)) == 1
    events = await ledger(outbound)
    assert [(e["marketing_opt_in"], e["source"]) for e in events] == [(True, "inbound")]

    clock.advance(days=31)  # past CONSENT_INTENT_ASK_AGAIN_DAYS (30 by default)
    later = from_ann("no more offers pls", wamid="wamid.k4")
    later["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(
        int(clock.now().timestamp())
    )
    await customer_sends(outbound, later)

    async def asked_again() -> bool:
        return len([m for m in await questions_to_ann(outbound) if m["wamid"]]) == 2

    outbound.advance(0)
    await eventually(asked_again, what="the question to be asked again a month later")


async def test_the_question_is_in_the_customer_s_language(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(outbound, from_ann("dejen de mandarme promociones", wamid="wamid.es"))
    question = await the_question(outbound)
    assert button_ids(question) == [STOP_ID, KEEP_ID]
    assert "promociones" in question["body"]["interactive"]["body"]["text"]


async def test_hard_negatives_and_opted_out_contacts_are_not_asked(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    for n, words in enumerate(
        (
            "don't stop the delivery",
            "STOP this terrible bill, it's wrong",
            "can you stop my order",
            "unsubscribe me from... no wait",
        )
    ):
        await customer_sends(outbound, from_ann(words, wamid=f"wamid.neg-{n}"))
        await answered_by_the_bot(outbound, f"wamid.neg-{n}")
    assert all(STOP_ID not in str(row.payload) for row in await outbound_rows(outbound))
    assert [e["source"] for e in await ledger(outbound)] == ["inbound"]

    opted_out = await outbound.client.patch(
        f"/api/v1/contacts/{ANN}", json={"marketing_opt_in": False}
    )
    assert opted_out.status == 200
    await customer_sends(outbound, from_ann("please stop the promotions", wamid="wamid.out"))
    await answered_by_the_bot(outbound, "wamid.out")
    assert all(STOP_ID not in str(row.payload) for row in await outbound_rows(outbound))


async def test_the_exact_stop_keyword_keeps_its_behaviour(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    await customer_sends(outbound, from_ann("STOP PROMOTIONS", wamid="wamid.kw"))
    events = await ledger(outbound)
    assert [(e["marketing_opt_in"], e["source"]) for e in events] == [
        (True, "inbound"),
        (False, "keyword"),
    ]
    assert all(STOP_ID not in str(row.payload) for row in await outbound_rows(outbound))


async def test_while_an_agent_owns_the_conversation_the_agent_sees_the_suggestion(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    client = outbound.client
    await customer_sends(outbound, from_ann("hi", wamid="wamid.a0"))
    await add_agent(client, AGENT, name="Agnes")
    taken = await client.post(f"/api/v1/conversations/{ANN}/takeover", json={"agent": AGENT})
    assert taken.status == 200, await taken.text()
    await settle(outbound.app[DISPATCHER])
    before = len(await outbound_rows(outbound))

    words = "arrêtez les pubs"
    await customer_sends(outbound, from_ann(words, wamid="wamid.a1"))
    assert len(await outbound_rows(outbound)) == before, "the bot does not ask"

    page = await client.get("/console/login")
    token = _CSRF.search(await page.text())
    assert token is not None
    signed = await client.post(
        "/console/login",
        data={"email": AGENT, "password": PASSWORD, "csrf_token": token[1], "next": "/console"},
        allow_redirects=False,
    )
    assert signed.status == 303
    conversation = await client.get(f"/console/conversations/{ANN}")
    html = await conversation.text()
    assert 'id="intent-suggestion"' in html
    assert str(escape(words)) in html
    assert 'id="intent-opt-out"' in html
    assert "intent_suggestion.js" in html
    assert f'data-contact="{ANN}"' in html
    script = await client.get("/console/static/intent_suggestion.js")
    assert script.status == 200
    assert "/opt-in" in await script.text()

    # What the "Opt out" button posts: the agent's opt-in switch, with the words as note.
    note = re.search(r'data-note="([^"]+)"', html)
    csrf = _META.search(html)
    assert note is not None
    assert csrf is not None
    switched = await client.post(
        f"/console/api/contacts/{ANN}/opt-in",
        json={"marketing_opt_in": False, "note": note[1].replace("&#39;", "'")},
        headers={"X-CSRF-Token": csrf[1]},
    )
    assert switched.status == 200, await switched.text()
    last = (await ledger(outbound))[-1]
    assert (last["marketing_opt_in"], last["source"], last["actor"]) == (False, "agent", AGENT)
    assert words in last["note"]

    after = await (await client.get(f"/console/conversations/{ANN}")).text()
    assert 'id="intent-suggestion"' not in after, "gone once acted on"

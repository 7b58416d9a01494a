"""The console's server behaviour for a day's work: each agent's own unread counts, one
message per composed intent (REST header, console form), history at any length, and
live events for changes another store (another process) makes, on both backends."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp

from engine.clock import FrozenClock
from engine.store import open_store
from engine.web.keys import SETTINGS
from tests.conftest import AUTH, SAMPLE_PHONE_NUMBER_ID
from tests.desk import Client, add_agent, add_contact, messages_of, receive, store_of
from tests.test_web_console import ANN, BOB, WA, page_token, sign_in, signed_in

OTHER = "4915123456789"


async def lists(client: Client) -> dict[str, Any]:
    answer = await client.get("/console/api/conversations", headers={"Accept": "application/json"})
    assert answer.status == 200, await answer.text()
    return await answer.json()  # type: ignore[no-any-return]


def unread_of(data: dict[str, Any], wa_id: str) -> int:
    for rows in data.values():
        for row in rows:
            if row["wa_id"] == wa_id:
                return int(row["unread"])
    raise AssertionError(f"{wa_id} is in no list")


async def as_agent(client: Client, email: str) -> str:
    client.session.cookie_jar.clear()
    assert (await sign_in(client, email)).status == 303
    return await page_token(client)


async def test_each_agent_has_their_own_unread_counts(client: Client, clock: FrozenClock) -> None:
    await signed_in(client, ANN, "Ann")
    await add_agent(client, BOB, name="Bob")
    await add_contact(client, WA)
    store = store_of(client)
    await receive(store, WA, "hello", clock.now())
    await receive(store, WA, "anyone there?", clock.now())

    # Bob opens the conversation (it waits in the bot list): his count clears, Ann's not.
    await as_agent(client, BOB)
    assert unread_of(await lists(client), WA) == 2
    assert (await client.get(f"/console/conversations/{WA}")).status == 200
    assert unread_of(await lists(client), WA) == 0
    await as_agent(client, ANN)
    assert unread_of(await lists(client), WA) == 2, "Bob's reading is not Ann's"

    # A message stored later counts for both; Ann reads through the page's script.
    await receive(store, WA, "one more thing", clock.now() - timedelta(hours=1))  # late
    assert unread_of(await lists(client), WA) == 3
    token = await page_token(client)
    read = await client.post(
        f"/console/api/conversations/{WA}/read", headers={"X-CSRF-Token": token}
    )
    assert read.status == 200
    assert unread_of(await lists(client), WA) == 0
    await as_agent(client, BOB)
    assert unread_of(await lists(client), WA) == 1, "a late-delivered message is still new"


async def test_one_intent_sends_one_message_on_rest_and_the_console(
    client: Client, clock: FrozenClock
) -> None:
    token = await signed_in(client, ANN, "Ann")
    await add_contact(client, WA)
    await receive(store_of(client), WA, "hello", clock.now())
    rest = f"/api/v1/conversations/{WA}/messages"
    first = await client.post(
        rest, json={"agent": ANN, "text": "Hi!"}, headers={**AUTH, "Idempotency-Key": "k-1"}
    )
    again = await client.post(
        rest, json={"agent": ANN, "text": "Hi!"}, headers={**AUTH, "Idempotency-Key": "k-1"}
    )
    assert first.status == again.status == 202
    assert (await first.json())["id"] == (await again.json())["id"]

    console = f"/console/api/conversations/{WA}/messages"
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}
    body = {"text": "Let me check.", "idempotency_key": "form-7"}
    # A double click: two posts at once with the form's key.
    one, two = await asyncio.gather(
        client.post(console, json=body, headers=headers),
        client.post(console, json=body, headers=headers),
    )
    assert one.status == two.status == 202
    assert (await one.json())["id"] == (await two.json())["id"]
    texts = [m.text for m in await messages_of(store_of(client), WA) if m.direction == "outbound"]
    assert texts == ["Hi!", "Let me check."]

    bad = await client.post(
        rest, json={"agent": ANN, "text": "x"}, headers={**AUTH, "Idempotency-Key": "has space"}
    )
    assert bad.status == 422
    assert "Idempotency-Key" in (await bad.json())["error"]["message"]


async def test_idempotent_compose_across_store_instances(
    client: Client, clock: FrozenClock
) -> None:
    """Two processes given the same key: the unique key lets one message through."""
    from engine.agents import desk
    from engine.models.content import TextContent

    await signed_in(client, ANN, "Ann")
    await add_contact(client, WA)
    await receive(store_of(client), WA, "hello", clock.now())
    other = await open_store(client.app[SETTINGS].database_url, clock=clock)
    try:
        results = await asyncio.gather(
            *(
                desk.compose_as(
                    store,
                    WA,
                    ANN,
                    TextContent(body="once"),
                    confirm_opted_out=False,
                    now=clock.now(),
                    idempotency_key="same",
                )
                for store in (store_of(client), other, store_of(client), other)
            )
        )
    finally:
        await other.close()
    assert len({composed.message.id for composed in results}) == 1
    sent = [m for m in await messages_of(store_of(client), WA) if m.text == "once"]
    assert len(sent) == 1


async def test_history_pages_back_past_two_hundred_messages(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client, ANN, "Ann")
    await add_contact(client, WA)
    store = store_of(client)
    for n in range(260):
        await receive(store, WA, f"message {n}", clock.now() + timedelta(seconds=n))
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert "message 259" in page
    assert "message 209" not in page
    assert 'id="load-earlier"' in page

    seen: list[str] = []
    before = ""
    while True:
        answer = await client.get(
            f"/console/api/conversations/{WA}/messages",
            params={"before": before} if before else {},
            headers={"Accept": "application/json"},
        )
        data = await answer.json()
        seen = [m["text"] for m in data["messages"]] + seen
        if not data["more"]:
            break
        before = data["messages"][0]["id"]
    assert seen == [f"message {n}" for n in range(260)], "every message, once, in order"


async def read_events(
    response: aiohttp.ClientResponse, wanted: Any, *, within: float = 10.0
) -> dict[str, Any]:
    """Read the stream until an event for which ``wanted(name, data)`` holds."""

    async def scan() -> dict[str, Any]:
        name, data, seq = "message", "", ""
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                raise AssertionError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line.startswith("id: "):
                seq = line[4:]
            elif line == "" and data:
                parsed = json.loads(data)
                if wanted(name, parsed):
                    return {"event": name, "id": seq, **parsed}
                name, data = "message", ""

    return await asyncio.wait_for(scan(), within)


async def test_a_message_stored_by_another_process_reaches_the_page_live(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client, ANN, "Ann")
    await add_contact(client, WA)
    await add_contact(client, OTHER)
    other = await open_store(client.app[SETTINGS].database_url, clock=clock)
    try:
        events = await client.get("/console/events")
        assert events.status == 200
        assert events.headers["Content-Type"].startswith("text/event-stream")
        stored = await receive(other, WA, "from another process", clock.now())
        got = await read_events(
            events, lambda name, d: name == "message" and d["message"]["id"] == stored.id
        )
        assert got["wa_id"] == WA
        assert got["added"] is True
        assert got["message"]["text"] == "from another process"
        assert got["window_open_until"] is not None

        # Another agent's reading reaches only them; a change of hands reaches everyone.
        token = await page_token(client)
        taken = await client.post(
            f"/console/api/conversations/{WA}/read", headers={"X-CSRF-Token": token}
        )
        assert taken.status == 200
        mine = await read_events(events, lambda name, d: name == "read")
        assert mine["agent"] == ANN
        await client.post(
            f"/console/conversations/{OTHER}/takeover",
            data={"csrf_token": token},
            allow_redirects=False,
        )
        moved = await read_events(
            events, lambda name, d: name == "conversation" and d["wa_id"] == OTHER
        )
        assert moved["owner"] == "agent"
        assert moved["agent"] == ANN
        keeper = await client.get("/console/events")  # another page stays open
        events.close()

        # A page that reconnects gets what it missed after its last event.
        missed = await receive(other, OTHER, "while away", clock.now())
        again = await client.get("/console/events", headers={"Last-Event-ID": moved["id"]})
        replay = await read_events(again, lambda name, d: name in ("resync", "message"))
        assert replay["event"] == "message"
        assert replay["message"]["id"] == missed.id
        again.close()
        # One too old for what the server keeps is told to load afresh.
        stale = await client.get("/console/events", headers={"Last-Event-ID": "0"})
        first = await read_events(stale, lambda name, d: True)
        assert first["event"] in ("resync", "message")
        stale.close()
        keeper.close()
    finally:
        await other.close()


async def test_a_colleagues_note_resolve_and_assignment_reach_an_open_page_live(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client, ANN, "Ann")
    await add_agent(client, BOB, name="Bob")
    await add_contact(client, WA)
    await receive(store_of(client), WA, "hello", clock.now())
    await as_agent(client, BOB)
    bobs_page = await client.get("/console/events")
    assert bobs_page.status == 200
    token = await as_agent(client, ANN)
    conversation = f"/console/api/conversations/{WA}"
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}

    def entry_event(kind: str) -> Any:
        return lambda name, d: name == "entry" and d["entry"]["kind"] == kind

    written = await client.post(
        f"{conversation}/notes", json={"text": "VIP: <b>free</b> shipping"}, headers=headers
    )
    assert written.status == 201, await written.text()
    note = await read_events(bobs_page, entry_event("note"))
    async with store_of(client).read() as tx:
        contact = await tx.contacts.get(WA)
    assert contact is not None
    assert (note["wa_id"], note["contact_id"]) == (WA, contact.id)
    assert note["entry"]["id"] == (await written.json())["id"]
    assert note["entry"]["text"] == "VIP: <b>free</b> shipping"
    assert note["entry"]["author"] == ANN
    assert "Private note · Ann" in note["entry"]["html"]
    assert "VIP: &lt;b&gt;free&lt;/b&gt; shipping" in note["entry"]["html"], "escaped"

    # Resolving changes no hands: the conversation's event says it is resolved now.
    resolved = await client.post(f"{conversation}/resolve", headers=headers)
    assert resolved.status == 200, await resolved.text()
    state = await read_events(bobs_page, lambda name, d: name == "conversation")
    assert (state["wa_id"], state["resolved"]) == (WA, True)
    done = await read_events(bobs_page, entry_event("resolved"))
    assert "Ann marked this resolved" in done["entry"]["html"]

    # An assignment (with its note) opens it again and gives it to Bob.
    assigned = await client.post(
        f"{conversation}/assign", json={"to": BOB, "note": "refund please"}, headers=headers
    )
    assert assigned.status == 200, await assigned.text()
    state = await read_events(bobs_page, lambda name, d: name == "conversation")
    assert (state["owner"], state["agent"], state["resolved"]) == ("agent", BOB, False)
    handed = await read_events(bobs_page, entry_event("assigned"))
    assert (handed["entry"]["assignee"], handed["entry"]["text"]) == (BOB, "refund please")
    assert "Ann assigned this to Bob: “refund please”" in handed["entry"]["html"]

    # Each came as the page's own load gives it, so a page never shows one twice over.
    extras = await client.get(f"{conversation}/extras", headers={"Accept": "application/json"})
    assert (await extras.json())["entries"] == [note["entry"], done["entry"], handed["entry"]]
    bobs_page.close()


async def test_a_late_delivered_message_sits_at_the_time_the_customer_wrote_it(
    client: Client, clock: FrozenClock
) -> None:
    from tests.inbound_support import text_notification

    await signed_in(client, ANN, "Ann")
    await add_contact(client, WA)
    on_time = text_notification(
        "second, on time",
        wamid="wamid.on-time",
        sender=WA,
        sent_at=clock.now() - timedelta(minutes=1),
    )
    late = text_notification(
        "first, delivered late",
        wamid="wamid.late",
        sender=WA,
        sent_at=clock.now() - timedelta(hours=3),
    )
    for notification in (on_time, late):
        assert (await client.post("/webhook", json=notification)).status == 200
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert page.index("first, delivered late") < page.index("second, on time")
    answer = await client.get(
        f"/console/api/conversations/{WA}/messages", headers={"Accept": "application/json"}
    )
    shown = {m["text"]: m["at"] for m in (await answer.json())["messages"]}
    assert shown["first, delivered late"].startswith("2026-03-02T06:00")


async def test_live_events_name_the_business_number_a_conversation_moved_to(
    client: Client, clock: FrozenClock
) -> None:
    from tests.test_web_console import SUPPORT, customer_writes_to

    token = await signed_in(client, ANN, "Ann")
    registered = await client.post(
        "/api/v1/numbers",
        json={"phone_number_id": SUPPORT, "display_phone_number": "+1 555-078-3884"},
    )
    assert registered.status == 201, await registered.text()
    await add_contact(client, WA)
    events = await client.get("/console/events")
    assert events.status == 200

    def customers_message(text: str) -> Any:
        return lambda name, d: name == "message" and d["message"]["text"] == text

    await customer_writes_to(client, SUPPORT, "to support", "wamid.live-support", clock.now())
    first = await read_events(events, customers_message("to support"))
    assert (first["added"], first["number"]) == (True, "+1 555-078-3884")

    clock.advance(minutes=1)
    await customer_writes_to(
        client, SAMPLE_PHONE_NUMBER_ID, "to sales", "wamid.live-sales", clock.now()
    )
    moved = await read_events(events, customers_message("to sales"))
    assert moved["number"] == "+1 555-078-3881", "the conversation is on the number written to"

    taken = await client.post(
        f"/console/conversations/{WA}/takeover", data={"csrf_token": token}, allow_redirects=False
    )
    assert taken.status == 303
    state = await read_events(events, lambda name, d: name == "conversation" and d["agent"] == ANN)
    assert state["number"] == "+1 555-078-3881"
    events.close()

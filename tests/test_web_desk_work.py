"""The desk's work over REST and in the console, against the real server: assign and
transfer with a note, who has what, resolve (the customer's next message reopens),
private notes that never reach the Cloud API, saved replies managed by admins, search,
and opening a contact who never wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from engine.models import Owner
from engine.store import Tx
from tests.desk import Client, add_agent, add_contact, messages_of, receive, store_of
from tests.outbound_support import eventually, start_outbound
from tests.test_web_console import ANN, BOB, sign_in, signed_in

WA = "16505551234"
CLEO = "cleo@example.com"


async def hand_off(client: Client, wa_id: str, clock: FrozenClock) -> None:
    """What a flow's handoff step does: the customer asked for a person."""

    async def job(tx: Tx) -> None:
        contact = await tx.contacts.get(wa_id)
        assert contact is not None
        await tx.conversations.set_owner(contact.id, Owner.AGENT, None)
        await tx.flow_sessions.record_handoff(contact.id, "support", "billing", None, clock.now())

    await store_of(client).write(job)


async def workload(client: Client) -> dict[str, int]:
    answer = await client.get("/api/v1/workload")
    assert answer.status == 200
    return {row["email"]: row["open"] for row in (await answer.json())["agents"]}


async def test_assign_transfer_resolve_and_reopen_over_rest(
    client: Client, clock: FrozenClock
) -> None:
    await add_agent(client, ANN, name="Ann Lee")
    await add_agent(client, BOB, name="Bob Stone")
    await add_agent(client, CLEO, name="Cleo Admin", role="admin")
    await add_contact(client, WA, name="Chris")
    await receive(store_of(client), WA, "I want a refund", clock.now())
    await hand_off(client, WA, clock)

    answer = await client.post(
        f"/api/v1/conversations/{WA}/assign", json={"agent": ANN, "to": BOB, "note": "refund"}
    )
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {
        "wa_id": WA,
        "agent": BOB,
        "resolved": False,
        "resolved_at": None,
    }
    view = await (await client.get(f"/api/v1/conversations/{WA}")).json()
    assert (view["owner"], view["agent"]) == ("agent", BOB)
    assert await workload(client) == {ANN: 0, BOB: 1, CLEO: 0}

    taken = await client.post(f"/api/v1/conversations/{WA}/assign", json={"agent": ANN, "to": ANN})
    assert taken.status == 409
    error = (await taken.json())["error"]
    assert error["code"] == "conversation_owned"
    assert "Bob Stone" in error["message"]
    unknown = await client.post(
        f"/api/v1/conversations/{WA}/assign", json={"agent": BOB, "to": "zed@example.com"}
    )
    assert unknown.status == 422
    assert (await unknown.json())["error"]["fields"][0]["field"] == "to"
    moved = await client.post(f"/api/v1/conversations/{WA}/assign", json={"agent": CLEO, "to": ANN})
    assert (await moved.json())["agent"] == ANN, "an admin transfers anyone's"

    clock.advance(minutes=3)
    resolved = await client.post(f"/api/v1/conversations/{WA}/resolve", json={"agent": ANN})
    assert (await resolved.json())["resolved"] is True
    assert await workload(client) == {ANN: 0, BOB: 0, CLEO: 0}
    clock.advance(minutes=3)
    await receive(store_of(client), WA, "still waiting", clock.now())
    assert await workload(client) == {ANN: 1, BOB: 0, CLEO: 0}, "the customer reopened it"

    notes = await (await client.get(f"/api/v1/conversations/{WA}/notes")).json()
    assert [(e["kind"], e["author"], e["assignee"], e["text"]) for e in notes["entries"]] == [
        ("assigned", ANN, BOB, "refund"),
        ("assigned", CLEO, ANN, None),
        ("resolved", ANN, None, None),
    ]


async def test_private_notes_never_reach_the_customer(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    server = await start_outbound(aiohttp_client, tmp_path, clock)
    client = server.client
    await add_contact(client, WA, name="Chris")
    token = await signed_in(client, ANN, name="Ann Lee")
    await receive(store_of(client), WA, "hello?", clock.now())
    take = await client.post(f"/api/v1/conversations/{WA}/takeover", json={"agent": ANN})
    assert take.status == 200

    note = await client.post(
        f"/console/api/conversations/{WA}/notes",
        json={"text": "Customer is VIP: offer free shipping"},
        headers={"X-CSRF-Token": token},
    )
    assert note.status == 201, await note.text()
    rest = await client.post(
        f"/api/v1/conversations/{WA}/notes", json={"agent": ANN, "text": "Called them at 10"}
    )
    assert rest.status == 201
    # A real message afterwards goes out: the sender runs, and the notes are not in it.
    sent = await client.post(
        f"/console/api/conversations/{WA}/messages",
        json={"text": "Looking into it now"},
        headers={"X-CSRF-Token": token},
    )
    assert sent.status == 202
    [posted] = await eventually(lambda: server.received(WA), what="the reply at the Cloud API")
    assert posted["body"]["text"]["body"] == "Looking into it now"
    everything = str(await server.received())
    assert "VIP" not in everything
    assert "Called them" not in everything
    outbound = [m for m in await messages_of(store_of(client), WA) if m.direction == "outbound"]
    assert [m.text for m in outbound] == ["Looking into it now"]

    extras = await (await client.get(f"/console/api/conversations/{WA}/extras")).json()
    assert [e["text"] for e in extras["entries"]] == [
        "Customer is VIP: offer free shipping",
        "Called them at 10",
    ]
    assert "Private note · Ann Lee" in extras["entries"][0]["html"]
    empty = await client.post(
        f"/console/api/conversations/{WA}/notes",
        json={"text": "  "},
        headers={"X-CSRF-Token": token},
    )
    assert empty.status == 422
    assert (await empty.json())["error"]["fields"][0]["field"] == "text"


async def test_saved_replies_are_managed_by_admins_and_listed_for_agents(
    client: Client, clock: FrozenClock
) -> None:
    await add_agent(client, ANN, name="Ann Lee")
    await add_agent(client, CLEO, name="Cleo Admin", role="admin")

    refused = await client.put("/api/v1/saved-replies/hours", json={"agent": ANN, "text": "9-5"})
    assert refused.status == 403
    bad = await client.put("/api/v1/saved-replies/a%20b", json={"agent": CLEO, "text": "x"})
    assert bad.status == 422
    assert (await bad.json())["error"]["fields"][0]["field"] == "shortcut"
    ok = await client.put(
        "/api/v1/saved-replies/Hours", json={"agent": CLEO, "text": "We open 9 to 5."}
    )
    assert ok.status == 200
    assert (await ok.json())["shortcut"] == "hours"
    listed = await (await client.get("/api/v1/saved-replies")).json()
    assert [(r["shortcut"], r["text"]) for r in listed["saved_replies"]] == [
        ("hours", "We open 9 to 5.")
    ]

    # In the console: an admin adds one on the page; an agent only reads them.
    assert (await sign_in(client, CLEO)).status == 303
    page = await client.get("/console/saved-replies")
    text = await page.text()
    assert 'id="reply-save"' in text
    token = text.split('name="csrf_token" value="')[1].split('"')[0]
    added = await client.post(
        "/console/saved-replies",
        data={"csrf_token": token, "shortcut": "/thanks", "text": "Thanks for waiting!"},
        allow_redirects=False,
    )
    assert added.status == 303
    wrong = await client.post(
        "/console/saved-replies",
        data={"csrf_token": token, "shortcut": "no spaces", "text": "x"},
    )
    assert wrong.status == 422
    assert "shortcut:" in await wrong.text()
    await client.post("/console/logout", data={"csrf_token": token})
    assert (await sign_in(client, ANN)).status == 303
    agent_page = await (await client.get("/console/saved-replies")).text()
    assert "Thanks for waiting!" in agent_page
    assert 'id="reply-save"' not in agent_page
    replies = await (await client.get("/console/api/saved-replies")).json()
    assert [r["shortcut"] for r in replies["saved_replies"]] == ["hours", "thanks"]

    gone = await client.delete("/api/v1/saved-replies/thanks", params={"agent": CLEO})
    assert gone.status == 204
    again = await client.delete("/api/v1/saved-replies/thanks", params={"agent": CLEO})
    assert again.status == 404


async def test_search_and_opening_a_contact_who_never_wrote(
    client: Client, clock: FrozenClock
) -> None:
    await add_contact(client, WA, name="Chris Moreno")
    await add_contact(client, "447911123456", name="Dana Okafor")
    await receive(store_of(client), WA, "Where is my jacket?", clock.now())
    token = await signed_in(client, ANN, name="Ann Lee")

    found = await (await client.get("/api/v1/search", params={"q": "jacket"})).json()
    assert [m["address"] for m in found["messages"]] == [WA]
    by_name = await (await client.get("/console/api/search", params={"q": "okafor"})).json()
    assert [c["address"] for c in by_name["contacts"]] == ["447911123456"]
    assert (await client.get("/api/v1/search")).status == 422

    page = await client.get("/console/conversations/447911123456")
    assert page.status == 200
    assert "has not written yet" in await page.text()
    take = await client.post(
        "/console/conversations/447911123456/takeover",
        data={"csrf_token": token},
        allow_redirects=False,
    )
    assert take.status == 303
    text = await (await client.get("/console/conversations/447911123456")).text()
    assert 'class="mode active" data-mode="template"' in text, "templates only"
    assert 'id="text-form" class="mode-panel" data-mode="text" hidden' in text
    sent = await client.post(
        "/console/api/conversations/447911123456/messages",
        json={"template": {"name": "order_update", "language": "en_US", "params": ["A-1", "x"]}},
        headers={"X-CSRF-Token": token},
    )
    assert sent.status == 202, await sent.text()


async def test_release_asks_first_when_the_customer_asked_for_a_person(
    client: Client, clock: FrozenClock
) -> None:
    await add_contact(client, WA, name="Chris")
    await add_contact(client, "447911123456", name="Dana")
    await receive(store_of(client), WA, "agent please", clock.now())
    await hand_off(client, WA, clock)
    await signed_in(client, ANN, name="Ann Lee")

    asked = await (await client.get(f"/console/conversations/{WA}")).text()
    assert 'data-asked-for-person="true"' in asked
    assert 'id="release-dialog"' in asked
    other = await (await client.get("/console/conversations/447911123456")).text()
    assert 'data-asked-for-person="false"' in other

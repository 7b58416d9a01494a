"""REST conversations: takeover and release, the compose rules, the conversation view."""

from __future__ import annotations

from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.models import Failure, MessageStatus, Owner
from engine.store import Tx
from tests.desk import Client, add_agent, add_contact, messages_of, receive, store_of

ANN = "ann@example.com"
BOB = "bob@example.com"
WA = "16505551234"
SALE = {"name": "spring_sale", "language": "en_US", "params": ["Chris", "20%"]}
ORDER = {"name": "order_update", "language": "en_US", "params": ["A-17", "on its way"]}


@pytest.fixture
async def desk(client: Client) -> Client:
    await add_agent(client, ANN, name="Ann")
    await add_agent(client, BOB, name="Bob")
    return client


async def takeover(client: Client, agent: str, wa_id: str = WA) -> Any:
    return await client.post(f"/api/v1/conversations/{wa_id}/takeover", json={"agent": agent})


async def send(client: Client, body: dict[str, Any], wa_id: str = WA) -> Any:
    return await client.post(f"/api/v1/conversations/{wa_id}/messages", json=body)


async def view(client: Client, wa_id: str = WA) -> dict[str, Any]:
    response = await client.get(f"/api/v1/conversations/{wa_id}")
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    return (await response.json())["error"]  # type: ignore[no-any-return]


# --- takeover and release -------------------------------------------------------------


async def test_a_second_takeover_is_a_conflict_naming_the_owner(desk: Client) -> None:
    await add_contact(desk, WA)
    first = await takeover(desk, ANN)
    assert first.status == 200
    assert (await first.json())["owner"] == "agent"

    error = await error_of(await takeover(desk, BOB), 409)
    assert error["code"] == "conversation_owned"
    assert error["owner"] == ANN
    assert ANN in error["message"]
    again = await takeover(desk, ANN)
    assert again.status == 200, "taking over one's own conversation is no conflict"

    seen = await view(desk)
    assert (seen["owner"], seen["agent"], seen["agent_name"]) == ("agent", ANN, "Ann")
    assert [e["kind"] for e in seen["events"]] == ["takeover"]


async def test_only_the_owner_or_an_admin_releases(desk: Client) -> None:
    await add_agent(desk, "root@example.com", name="Root", role="admin")
    await add_contact(desk, WA)
    await takeover(desk, ANN)
    refused = await desk.post(f"/api/v1/conversations/{WA}/release", json={"agent": BOB})
    assert (await error_of(refused, 409))["owner"] == ANN
    assert (await view(desk))["agent"] == ANN

    by_admin = await desk.post(
        f"/api/v1/conversations/{WA}/release", json={"agent": "root@example.com"}
    )
    assert by_admin.status == 200
    assert (await by_admin.json())["owner"] == "bot"
    assert (await takeover(desk, BOB)).status == 200
    by_api = await desk.post(f"/api/v1/conversations/{WA}/release")
    assert (await by_api.json())["owner"] == "bot"
    events = [(e["kind"], e["agent"]) for e in (await view(desk))["events"]]
    assert events == [
        ("takeover", ANN),
        ("release", "root@example.com"),
        ("takeover", BOB),
        ("release", None),
    ]


async def test_takeover_of_unknown_things_changes_nothing(desk: Client) -> None:
    missing = await takeover(desk, ANN, "16505550000")
    assert (await error_of(missing, 404))["code"] == "not_found"
    await add_contact(desk, WA)
    nobody = await error_of(await takeover(desk, "nobody@example.com"), 422)
    assert nobody["fields"][0]["field"] == "agent"
    bad = await error_of(await desk.post(f"/api/v1/conversations/{WA}/takeover", json={}), 422)
    assert bad["fields"][0]["field"] == "agent"
    assert (await view(desk))["owner"] == "bot"
    assert (await desk.get("/api/v1/conversations/16505550000")).status == 404


async def test_lists_by_owner_queue_and_agent(desk: Client, clock: FrozenClock) -> None:
    for wa_id in ("16505550001", "16505550002", "16505550003"):
        await add_contact(desk, wa_id)
        await receive(store_of(desk), wa_id, f"hello from {wa_id}", clock.now())
        clock.advance(minutes=1)

    async def hand_off(tx: Tx) -> None:
        contact = await tx.contacts.get("16505550002")
        assert contact is not None
        await tx.conversations.set_owner(contact.id, Owner.AGENT, None)  # a flow's handoff

    await store_of(desk).write(hand_off)
    await takeover(desk, ANN, "16505550003")

    async def listed(query: str) -> list[str]:
        response = await desk.get(f"/api/v1/conversations{query}")
        assert response.status == 200, await response.text()
        return [c["wa_id"] for c in (await response.json())["conversations"]]

    assert await listed("") == ["16505550003", "16505550002", "16505550001"]
    assert await listed("?owner=bot") == ["16505550001"]
    assert await listed("?owner=agent") == ["16505550003", "16505550002"]
    assert await listed("?waiting=true") == ["16505550002"]
    assert await listed(f"?agent={ANN}") == ["16505550003"]
    assert await listed(f"?agent={BOB}") == []
    queue = (await (await desk.get("/api/v1/conversations?waiting=true")).json())["conversations"]
    assert queue[0]["unread"] == 1
    assert queue[0]["preview"] == "hello from 16505550002"
    assert queue[0]["waiting"] is True

    assert (await takeover(desk, BOB, "16505550002")).status == 200, "taken from the queue"
    bad = await error_of(await desk.get("/api/v1/conversations?owner=robot"), 422)
    assert bad["fields"][0]["field"] == "owner"


async def test_the_bot_stays_silent_while_an_agent_owns_the_conversation(
    desk: Client, clock: FrozenClock
) -> None:
    """What the inbound dispatcher reads to skip the bot: the owner stays the agent when
    the customer writes, the window is refreshed, the message waits unread for the agent,
    and nothing is sent on the customer's message."""
    await add_contact(desk, WA)
    await takeover(desk, ANN)
    await receive(store_of(desk), WA, "is anyone there?", clock.now())

    async def conversation(tx: Tx) -> Any:
        contact = await tx.contacts.get(WA)
        assert contact is not None
        return await tx.conversations.get(contact.id)

    owned = await store_of(desk).write(conversation)
    assert (owned.owner, owned.agent) == (Owner.AGENT, ANN)
    assert owned.window_open(clock.now())
    mine = (await (await desk.get(f"/api/v1/conversations?agent={ANN}")).json())["conversations"]
    assert [(c["wa_id"], c["unread"]) for c in mine] == [(WA, 1)]
    assert [m.direction.value for m in await messages_of(store_of(desk), WA)] == ["inbound"]

    await desk.post(f"/api/v1/conversations/{WA}/release", json={"agent": ANN})
    released = await store_of(desk).write(conversation)
    assert (released.owner, released.agent) == (Owner.BOT, None)


# --- the compose rules ------------------------------------------------------------------


async def test_free_text_in_the_window_is_queued_with_its_author(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA)
    await receive(store_of(desk), WA, "hi", clock.now())
    response = await send(desk, {"agent": ANN, "text": "Hello, how can I help?"})
    assert response.status == 202, await response.text()
    sent = await response.json()
    assert (sent["status"], sent["channel"], sent["agent"]) == ("queued", "compose", ANN)
    assert sent["notices"] == [], "an opted-in contact gets no notice"
    seen = await view(desk)
    assert (seen["owner"], seen["agent"]) == ("agent", ANN), "writing takes the bot's place"
    assert [m["text"] for m in seen["messages"]] == ["hi", "Hello, how can I help?"]


async def test_every_answer_about_an_opted_out_contact_carries_the_notice(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA, opted_in=False)
    await receive(store_of(desk), WA, "hi", clock.now())
    answers = [
        await send(desk, {"agent": ANN, "text": "Hello"}),
        await send(desk, {"agent": ANN, "template": ORDER}),
        await send(desk, {"agent": ANN, "template": SALE}),
        await send(desk, {"agent": ANN, "template": SALE, "confirm_opted_out": True}),
        await send(desk, {"agent": ANN, "template": {**SALE, "params": ["Chris"]}}),
    ]
    assert [a.status for a in answers] == [202, 202, 409, 202, 422]
    for answer in answers:
        body = await answer.json()
        notices = body["error"]["notices"] if "error" in body else body["notices"]
        assert [n["code"] for n in notices] == ["marketing_opt_out"]
    assert (await view(desk))["notices"][0]["code"] == "marketing_opt_out"


async def test_marketing_to_an_opted_out_contact_needs_confirmation(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA, opted_in=False)

    refused = await error_of(await send(desk, {"agent": ANN, "template": SALE}), 409)
    assert refused["code"] == "marketing_opt_out_confirmation_required"
    assert "confirm_opted_out" in refused["message"]
    assert await messages_of(store_of(desk), WA) == []
    assert (await view(desk))["owner"] == "bot", "a refused message takes nothing over"

    confirmed = await send(desk, {"agent": ANN, "template": SALE, "confirm_opted_out": True})
    assert confirmed.status == 202
    sent = await confirmed.json()
    assert sent["status"] == "queued"
    assert sent["text"] == "Hi Chris, our spring sale is on: 20% off everything until Sunday."
    assert sent["confirmed_opted_out"] == {"by": ANN, "at": "2026-03-02T09:00:00Z"}
    (stored,) = await messages_of(store_of(desk), WA)
    assert stored.status is MessageStatus.QUEUED
    shown = (await view(desk))["messages"]
    assert shown[0]["confirmed_opted_out"]["by"] == ANN


async def test_confirmation_is_only_recorded_when_the_policy_asked_for_it(
    desk: Client,
) -> None:
    await add_contact(desk, WA, opted_in=True)
    await add_contact(desk, "16505559999", opted_in=False)
    marketing = await send(desk, {"agent": ANN, "template": SALE, "confirm_opted_out": True})
    utility = await send(desk, {"agent": ANN, "template": ORDER}, wa_id="16505559999")
    assert (marketing.status, utility.status) == (202, 202)
    assert (await marketing.json())["confirmed_opted_out"] is None
    assert (await utility.json())["confirmed_opted_out"] is None


async def test_free_text_outside_the_window_points_to_templates(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA)
    never = await error_of(await send(desk, {"agent": ANN, "text": "Hello?"}), 422)
    assert never["code"] == "window_closed"
    assert never["window_open_until"] is None

    await receive(store_of(desk), WA, "hi", clock.now())
    clock.advance(hours=24, seconds=1)
    closed = await error_of(await send(desk, {"agent": ANN, "text": "Sorry for the wait"}), 422)
    assert closed["code"] == "window_closed"
    assert closed["template_route"] == f"POST /api/v1/conversations/{WA}/messages"
    assert "template" in closed["message"]
    assert closed["window_open_until"] == "2026-03-03T09:00:00Z"
    assert [m.direction.value for m in await messages_of(store_of(desk), WA)] == ["inbound"]

    template = await send(desk, {"agent": ANN, "template": ORDER})
    assert template.status == 202, "templates need no open window"
    seen = await view(desk)
    assert seen["window_open"] is False
    assert seen["window_open_until"] == "2026-03-03T09:00:00Z"


async def test_template_problems_name_the_field_and_record_nothing(desk: Client) -> None:
    await add_contact(desk, WA)
    missing = await error_of(
        await send(desk, {"agent": ANN, "template": {**ORDER, "params": ["A-17"]}}), 422
    )
    assert missing["fields"] == [
        {
            "field": "template.params",
            "message": "template order_update takes 2 parameter(s), 1 given",
        }
    ]
    unknown = await error_of(
        await send(desk, {"agent": ANN, "template": {"name": "nope", "language": "en_US"}}), 422
    )
    assert unknown["fields"][0]["field"] == "template"
    empty = await error_of(
        await send(desk, {"agent": ANN, "template": {**ORDER, "params": ["A-17", ""]}}), 422
    )
    assert empty["fields"][0]["field"] == "template.params.1"
    both = await error_of(await send(desk, {"agent": ANN, "text": "x", "template": ORDER}), 422)
    assert "exactly one of text and template" in both["message"]
    blank = await error_of(await send(desk, {"agent": ANN, "text": "   "}), 422)
    assert "text is empty" in blank["message"]
    assert await messages_of(store_of(desk), WA) == []
    assert (await view(desk))["owner"] == "bot"


async def test_writing_into_another_agents_conversation_is_a_conflict(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA)
    await receive(store_of(desk), WA, "hi", clock.now())
    await takeover(desk, ANN)
    error = await error_of(await send(desk, {"agent": BOB, "text": "Me too"}), 409)
    assert (error["code"], error["owner"]) == ("conversation_owned", ANN)
    assert [m.direction.value for m in await messages_of(store_of(desk), WA)] == ["inbound"]


async def test_a_131047_failure_shows_in_the_conversation_with_its_reason(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA)
    await receive(store_of(desk), WA, "hi", clock.now())
    sent = await (await send(desk, {"agent": ANN, "text": "Here is your answer"})).json()
    reason = (
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number."
    )

    async def meta_says_window_closed(tx: Tx) -> None:  # as the status webhook records it
        await tx.messages.change_status(
            sent["id"], MessageStatus.SENT, at=clock.now(), wamid="wamid.HBgL"
        )
        await tx.messages.change_status(
            sent["id"],
            MessageStatus.FAILED,
            at=clock.now(),
            failure=Failure(code="131047", reason=reason),
        )

    await store_of(desk).write(meta_says_window_closed)
    shown = (await view(desk))["messages"][-1]
    assert shown["status"] == "failed"
    assert shown["failure"] == {"code": "131047", "reason": reason}
    assert [s["status"] for s in shown["statuses"]] == ["queued", "sent", "failed"]


# --- release and restart a flow -----------------------------------------------------------


async def test_release_restarts_a_flow_and_refuses_an_unknown_one(
    desk: Client, clock: FrozenClock
) -> None:
    await add_contact(desk, WA, name="Chris")
    await receive(store_of(desk), WA, "hi", clock.now())  # the window is open for free text
    await takeover(desk, ANN)
    unknown = await desk.post(
        f"/api/v1/conversations/{WA}/release", json={"agent": ANN, "restart_flow": "nope"}
    )
    assert (await error_of(unknown, 422))["fields"][0]["field"] == "restart_flow"
    assert (await view(desk))["owner"] == "agent"

    known = await desk.post(
        f"/api/v1/conversations/{WA}/release", json={"agent": ANN, "restart_flow": "welcome"}
    )
    assert (await known.json())["restart_flow"] == {"name": "welcome", "started": True}
    after = await view(desk)
    assert after["owner"] == "bot"
    assert after["events"][-1] == {
        "kind": "release",
        "agent": ANN,
        "flow": "welcome",
        "at": "2026-03-02T09:00:00Z",
    }
    bot = [m for m in after["messages"] if m["channel"] == "bot"]
    assert [m["text"] for m in bot] == ["Hi Chris! How can we help you today?"]
    assert bot[0]["status"] == "queued"


async def test_a_flow_handoff_shows_its_queue_and_note(desk: Client, clock: FrozenClock) -> None:
    from engine.inbound.handoff import Incoming
    from engine.models.customer_input import CustomerInput, InputKind
    from engine.web.keys import BOT_HANDLER

    await add_contact(desk, WA, name="Chris")
    message = await receive(store_of(desk), WA, "talk to a person", clock.now())
    async with store_of(desk).read() as tx:
        contact = await tx.contacts.get(WA)
        assert contact is not None
        conversation = await tx.conversations.get(contact.id)
    await desk.app[BOT_HANDLER].handle(
        Incoming(
            message=message,
            contact=contact,
            conversation=conversation,
            input=CustomerInput(kind=InputKind.TEXT, text="talk to a person"),
            new_contact=False,
        )
    )
    shown = await view(desk)
    assert shown["waiting"] is True
    assert shown["handoff"] == {
        "flow": "handoff",
        "queue": "support",
        "note": "Chris asked the bot for a person.",
        "at": "2026-03-02T09:00:00Z",
    }
    from tests.test_web_console import sign_in

    assert (await sign_in(desk, ANN)).status == 303
    page = await (await desk.get(f"/console/conversations/{WA}")).text()
    assert 'id="handoff"' in page
    assert "queue support" in page
    assert "Chris asked the bot for a person." in page

"""The API & integrations channel and the messages report, end to end against the built-in
simulator on loopback (the API & integrations channel)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.models.contact import ConsentSource
from engine.store import Tx
from engine.store.contacts import Consent, NewContact
from engine.web.keys import STORE
from engine.whatsapp.signature import HEADER, sign
from tests.inbound_support import first_message, load
from tests.outbound_support import APP_SECRET, Outbound, start_outbound

ANN = "16505551234"
BOB = "16505550000"


@pytest.fixture
async def outbound(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Outbound:
    return await start_outbound(aiohttp_client, tmp_path, clock)


async def opted_out(outbound: Outbound, wa_id: str) -> None:
    response = await outbound.client.post(
        "/api/v1/contacts", json={"wa_id": wa_id, "marketing_opt_in": False}
    )
    assert response.status == 201


async def write_recently(outbound: Outbound, wa_id: str) -> None:
    """The contact wrote to us just now: the 24-hour window is open."""

    async def job(tx: Tx) -> None:
        contact, _ = await tx.contacts.get_or_create(
            NewContact(wa_id=wa_id, marketing_opt_in=True), Consent(ConsentSource.INBOUND)
        )
        await tx.conversations.record_inbound(contact.id, outbound.clock.now())

    await outbound.app[STORE].write(job)


async def test_a_template_to_a_new_number_is_queued_sent_delivered_and_read(
    outbound: Outbound,
) -> None:
    accepted = await outbound.send(
        to="+1 (650) 555-1234",
        template={"name": "order_update", "language": "en_US", "params": ["A-17", "shipped"]},
    )
    assert accepted["status"] == "queued"
    assert accepted["to"] == ANN
    assert "failure" not in accepted

    message = await outbound.wait_for(accepted["id"], "read")
    # "sent" once, though it is recorded twice: when Meta answered with the wamid (or,
    # if Meta's notification came first, when it named our message), then Meta's own
    # sent notification, whose details it carries too.
    history = [(h["status"], h["details"]) for h in message["history"]]
    assert [status for status, _ in history] == ["queued", "sent", "delivered", "read"]
    sent = history[1][1]
    assert sent.get("attempt") == 1 or sent.get("adopted_from_status") is True, sent
    assert "pricing" in sent, "Meta's sent notification is folded into the one entry"
    assert message["text"] == "Your order A-17 is shipped."
    assert message["wamid"].startswith("wamid.")
    assert message["attempts"] == 1

    contact = await (await outbound.client.get(f"/api/v1/contacts/{ANN}")).json()
    assert contact["marketing_opt_in"] is True, "an unknown number gets the default opt-in"
    consent = await (await outbound.client.get(f"/api/v1/contacts/{ANN}/consent")).json()
    assert [(e["source"], e["actor"]) for e in consent] == [("api", "api")]

    [received] = await outbound.received(ANN)
    assert received["body"]["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "A-17"},
                    {"type": "text", "text": "shipped"},
                ],
            }
        ],
    }


async def test_marketing_to_an_opted_out_contact_fails_with_a_reason_and_is_never_sent(
    outbound: Outbound,
) -> None:
    await opted_out(outbound, ANN)
    accepted = await outbound.send(
        to=ANN, template={"name": "spring_sale", "language": "en_US", "params": ["Ann", "20%"]}
    )
    assert accepted["status"] == "failed"
    assert accepted["failure"]["code"] == "marketing_opt_out"
    assert "opted out of marketing" in accepted["failure"]["reason"]

    # A UTILITY template to the same contact still goes, and is sent: so the sender ran.
    utility = await outbound.send(
        to=ANN, template={"name": "order_update", "language": "en_US", "params": ["A-1", "ready"]}
    )
    await outbound.wait_for(utility["id"], "sent", "delivered", "read")
    received = await outbound.received(ANN)
    assert [r["body"]["template"]["name"] for r in received] == ["order_update"]

    report = await (
        await outbound.client.get("/api/v1/reports/messages", params={"status": "failed"})
    ).json()
    [row] = report["rows"]
    assert row["id"] == accepted["id"]
    assert row["failure"]["code"] == "marketing_opt_out"
    assert row["template"] == "spring_sale"
    assert row["attempts"] == 0
    assert report["counts"] == {"failed": 1, "ambiguous": 0}


async def test_unknown_template_and_wrong_parameters_are_422_and_queue_nothing(
    outbound: Outbound,
) -> None:
    unknown = await outbound.client.post(
        "/api/v1/messages", json={"to": ANN, "template": {"name": "nope", "language": "en_US"}}
    )
    assert unknown.status == 422
    error = (await unknown.json())["error"]
    assert error["fields"][0]["field"] == "template"
    assert "nope (en_US) is not in the catalogue" in error["message"]

    wrong = await outbound.client.post(
        "/api/v1/messages",
        json={
            "to": ANN,
            "template": {"name": "order_update", "language": "en_US", "params": ["x"]},
        },
    )
    assert wrong.status == 422
    error = (await wrong.json())["error"]
    assert error["fields"][0]["field"] == "template.params"
    assert "takes 2 parameter(s), 1 given" in error["message"]

    bad_number = await outbound.client.post("/api/v1/messages", json={"to": "12345", "text": "hi"})
    assert bad_number.status == 422
    assert (await bad_number.json())["error"]["fields"][0]["field"] == "to"

    both = await outbound.client.post(
        "/api/v1/messages",
        json={"to": ANN, "text": "hi", "template": {"name": "order_update", "language": "en_US"}},
    )
    assert both.status == 422
    assert {f["field"] for f in (await both.json())["error"]["fields"]} == {"template", "text"}

    empty_param = await outbound.client.post(
        "/api/v1/messages",
        json={
            "to": ANN,
            "template": {"name": "order_update", "language": "en_US", "params": ["", "x"]},
        },
    )
    assert empty_param.status == 422
    assert (await empty_param.json())["error"]["fields"][0]["field"] == "template.params.0"

    report = await (await outbound.client.get("/api/v1/reports/messages")).json()
    assert report["rows"] == []
    missing = await outbound.client.get(f"/api/v1/contacts/{ANN}")
    assert missing.status == 404, "a refused request creates no contact"
    assert await outbound.received() == []


async def test_free_text_needs_an_open_window(outbound: Outbound) -> None:
    closed = await outbound.client.post("/api/v1/messages", json={"to": BOB, "text": "hello"})
    assert closed.status == 422
    error = (await closed.json())["error"]
    assert error["code"] == "window_closed"
    assert "send a template instead" in error["message"]

    await write_recently(outbound, BOB)
    accepted = await outbound.send(to=BOB, text="hello")
    message = await outbound.wait_for(accepted["id"], "read")
    assert message["kind"] == "text"
    [received] = await outbound.received(BOB)
    assert received["body"]["text"] == {"body": "hello", "preview_url": False}


async def test_an_idempotency_key_sends_once(outbound: Outbound) -> None:
    body = {
        "to": ANN,
        "template": {"name": "order_update", "language": "en_US", "params": ["A-9", "late"]},
        "idempotency_key": "order-A-9-late",
    }
    first = await outbound.client.post("/api/v1/messages", json=body)
    again = await outbound.client.post("/api/v1/messages", json=body)
    assert first.status == again.status == 202
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    await outbound.wait_for((await first.json())["id"], "read")
    assert len(await outbound.received(ANN)) == 1


async def test_report_filters_and_csv(outbound: Outbound) -> None:
    await opted_out(outbound, BOB)
    sent = await outbound.send(
        to=ANN, template={"name": "login_code", "language": "en_US", "params": ["123456"]}
    )
    blocked = await outbound.send(
        to=BOB, template={"name": "new_arrivals", "language": "en_US", "params": ["Bob"]}
    )
    await outbound.wait_for(sent["id"], "read")

    everything = await (await outbound.client.get("/api/v1/reports/messages")).json()
    assert [row["id"] for row in everything["rows"]] == [sent["id"], blocked["id"]]
    assert everything["counts"] == {"read": 1, "failed": 1, "ambiguous": 0}

    api_only = await (
        await outbound.client.get("/api/v1/reports/messages", params={"channel": "bot"})
    ).json()
    assert api_only["rows"] == []
    now = outbound.clock.now()
    window = {
        "since": (now - timedelta(minutes=1)).isoformat(),
        "until": (now + timedelta(minutes=1)).isoformat(),
    }
    within = await (await outbound.client.get("/api/v1/reports/messages", params=window)).json()
    assert len(within["rows"]) == 2
    later = await (
        await outbound.client.get(
            "/api/v1/reports/messages", params={"since": (now + timedelta(minutes=1)).isoformat()}
        )
    ).json()
    assert later["rows"] == []
    page = await (await outbound.client.get("/api/v1/reports/messages", params={"limit": 1})).json()
    assert page["next_after"] == sent["id"]

    response = await outbound.client.get(
        "/api/v1/reports/messages", params={"format": "csv", "status": "failed"}
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["id"], r["to"], r["channel"], r["template"], r["failure_code"]) for r in rows] == [
        (blocked["id"], BOB, "api", "new_arrivals", "marketing_opt_out")
    ]
    assert rows[0]["failure_reason"].startswith("The contact has opted out")

    bad = await outbound.client.get("/api/v1/reports/messages", params={"status": "lost"})
    assert bad.status == 422
    assert (await bad.json())["error"]["fields"][0]["field"] == "status"
    bad_date = await outbound.client.get("/api/v1/reports/messages", params={"since": "soon"})
    assert (await bad_date.json())["error"]["fields"][0]["field"] == "since"


async def test_get_message_404_and_auth(outbound: Outbound) -> None:
    missing = await outbound.client.get("/api/v1/messages/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    for method, path in [
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/messages/x"),
        ("GET", "/api/v1/reports/messages"),
        ("GET", "/api/v1/callbacks/secret"),
    ]:
        response = await outbound.client.request(
            method, path, headers={"Authorization": "Bearer wrong"}
        )
        assert response.status == 401, path


USER_ID = "US.13491208655302741918"


async def post_webhook(outbound: Outbound, data: dict[str, Any]) -> None:
    """Meta's notification, signed, to the server's own webhook."""
    raw = json.dumps(data).encode()
    response = await outbound.client.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, APP_SECRET)},
    )
    assert response.status == 200, await response.text()


async def test_a_stop_survives_a_number_change(outbound: Outbound) -> None:
    # Ann says STOP from her number, then WhatsApp says she changed it (Meta's samples).
    await post_webhook(outbound, load("text_stop_keyword"))
    await post_webhook(outbound, load("system_user_changed_number"))
    new_number = first_message(load("system_user_changed_number"))["system"]["wa_id"]

    accepted = await outbound.send(
        to=new_number,
        template={"name": "spring_sale", "language": "en_US", "params": ["Ann", "20%"]},
    )

    assert accepted["status"] == "failed"
    assert accepted["failure"]["code"] == "marketing_opt_out"
    contact = await (await outbound.client.get(f"/api/v1/contacts/{new_number}")).json()
    assert contact["marketing_opt_in"] is False
    consent = await (await outbound.client.get(f"/api/v1/contacts/{new_number}/consent")).json()
    assert [e["source"] for e in consent][-2:] == ["keyword", "number_change"]
    assert await outbound.received(new_number) == []
    gone = await outbound.client.get(f"/api/v1/contacts/{ANN}")
    assert gone.status == 404, "the old number is no longer the contact's"


async def test_a_message_to_a_user_id_goes_out_with_recipient(outbound: Outbound) -> None:
    accepted = await outbound.send(
        to=USER_ID,
        template={"name": "order_update", "language": "en_US", "params": ["A-17", "shipped"]},
    )
    assert accepted["to"] == USER_ID
    message = await outbound.wait_for(accepted["id"], "delivered", "read")
    assert message["wamid"].startswith("wamid.")
    [received] = await outbound.received(USER_ID)
    assert received["body"]["recipient"] == USER_ID
    assert "to" not in received["body"]
    contact = await (await outbound.client.get(f"/api/v1/contacts/{USER_ID}")).json()
    assert (contact["wa_id"], contact["user_id"]) == (None, USER_ID)


async def test_an_authentication_template_to_a_user_id_is_refused_up_front(
    outbound: Outbound,
) -> None:
    response = await outbound.client.post(
        "/api/v1/messages",
        json={
            "to": USER_ID,
            "template": {"name": "login_code", "language": "en_US", "params": ["1"]},
        },
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "authentication_to_user_id"
    assert [f["field"] for f in error["fields"]] == ["template"]
    assert "131062" in error["message"]
    assert await outbound.received() == []
    # The same template to a phone number goes.
    sent = await outbound.send(
        to=BOB, template={"name": "login_code", "language": "en_US", "params": ["1"]}
    )
    assert sent["status"] == "queued"


@pytest.mark.parametrize("bad", ["US.12-3", "us.1", "US."])
async def test_a_malformed_user_id_in_to_is_a_422_naming_to(outbound: Outbound, bad: str) -> None:
    response = await outbound.client.post("/api/v1/messages", json={"to": bad, "text": "hi"})
    assert response.status == 422
    assert [f["field"] for f in (await response.json())["error"]["fields"]] == ["to"]


async def test_meta_refusing_an_authentication_template_to_a_user_id_says_why(
    outbound: Outbound,
) -> None:
    # Queued while the contact was known by a user id only, it reaches Meta, which
    # refuses it (the simulator answers as Meta does): the failure says why.
    await outbound.fail(USER_ID, 131062)
    accepted = await outbound.send(
        to=USER_ID,
        template={"name": "order_update", "language": "en_US", "params": ["A-17", "shipped"]},
    )
    failed = await outbound.wait_for(accepted["id"], "failed")
    assert failed["failure"]["code"] == "131062"
    assert "phone numbers only" in failed["failure"]["reason"]

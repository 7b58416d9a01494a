"""The marketing opt-in rule holds at the moment of sending: a contact who opts out
after their message was queued is treated as one who had opted out before.

The real server, its built-in simulator and a real SQLite file. The sender is started by
the test once the messages are queued and the contact has opted out through the real,
signed ``POST /webhook`` (a STOP keyword, or Meta's ``user_preferences`` stop).
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.models.content import TemplateContent
from engine.models.message import Channel
from engine.outbound.enqueue import OutboundRequest
from engine.send_rules import Options
from engine.web.keys import CAMPAIGNS, SENDER, STORE
from engine.whatsapp.signature import HEADER, sign
from tests.campaign_support import NEW_ARRIVALS, ORDER_UPDATE, Campaigns, number, start_campaigns
from tests.conftest import FIXTURES
from tests.databases import database_url, execute
from tests.outbound_support import APP_SECRET, Outbound, enqueue_all, eventually

WEBHOOKS = FIXTURES / "webhooks"
SENT = ("sent", "delivered", "read")


def fixture(name: str, wa_id: str, wamid: str = "") -> dict[str, Any]:
    """A webhook fixture from ``wa_id`` (and with message id ``wamid``)."""
    data: dict[str, Any] = json.loads((WEBHOOKS / f"{name}.json").read_text())
    value = copy.deepcopy(data)["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts", []):
        contact["wa_id"] = wa_id
    for message in value.get("messages", []):
        message.update({"from": wa_id, "id": wamid})
    for preference in value.get("user_preferences", []):
        preference["wa_id"] = wa_id
    data["entry"][0]["changes"][0]["value"] = value
    return data


async def opts_out(outbound: Outbound, wa_id: str, notification: str) -> None:
    """``wa_id`` opts out the way Meta tells us: a signed notification to our webhook."""
    raw = json.dumps(fixture(notification, wa_id, f"wamid.stop-{wa_id}")).encode()
    response = await outbound.client.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, APP_SECRET)},
    )
    assert response.status == 200, await response.text()

    async def opted_out() -> bool:
        found = await (await outbound.client.get(f"/api/v1/contacts/{wa_id}")).json()
        return found["marketing_opt_in"] is False

    await eventually(opted_out, what=f"{wa_id} to be opted out")


@contextlib.asynccontextmanager
async def sending(outbound: Outbound) -> AsyncIterator[None]:
    """The sender and the campaign worker run from here on (not before)."""
    sender, campaigns = outbound.app[SENDER], outbound.app[CAMPAIGNS]
    sender.start()
    campaigns.start()
    try:
        yield
    finally:
        await sender.stop()


async def planned_broadcast(campaigns: Campaigns, **body: Any) -> str:
    """A MARKETING broadcast to three opted-in contacts, planned into the outbox."""
    await campaigns.import_contacts(3, tags="spring")
    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Spring", "template": NEW_ARRIVALS, "tags": ["spring"], **body},
        201,
    )
    assert (created["will_send"], created["warnings"]) == (3, [])
    await campaigns.outbound.app[CAMPAIGNS].run_once()
    found = await campaigns.broadcast(created["id"])
    assert (found["planned"], found["counts"]["queued"]) == (3, 3)
    return str(created["id"])


@pytest.fixture
async def campaigns(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    """Nothing is sent until the test says so (:func:`sending`)."""
    return await start_campaigns(aiohttp_client, tmp_path, clock, OUTBOUND_WORKER=False)


def templates_received(received: list[dict[str, Any]]) -> list[str]:
    return [r["body"]["template"]["name"] for r in received if r["type"] == "template"]


async def test_a_contact_who_texts_stop_after_the_broadcast_was_planned_is_skipped(
    campaigns: Campaigns, clock: FrozenClock
) -> None:
    outbound = campaigns.outbound
    broadcast_id = await planned_broadcast(campaigns)

    await opts_out(outbound, number(1), "text_stop_keyword")
    async with sending(outbound):
        done = await campaigns.wait_for_broadcast(broadcast_id, "completed")

    counts = done["counts"]
    assert counts["skipped"] == 1
    assert sum(counts[status] for status in SENT) == 2
    assert counts["queued"] == counts["sending"] == counts["failed"] == 0
    report = await campaigns.get(f"/api/v1/broadcasts/{broadcast_id}/report")
    [skipped] = [row for row in report["rows"] if row["status"] == "skipped"]
    assert skipped["to"] == number(1)
    assert skipped["failure"]["code"] == "marketing_opt_out"
    assert "opted out of marketing" in skipped["failure"]["reason"]
    message = await outbound.message(skipped["message_id"])
    assert [h["status"] for h in message["history"]] == ["queued", "skipped"]
    assert message["attempts"] == 0, "never attempted"

    # The contact got the STOP confirmation and nothing of the broadcast.
    await eventually(lambda: outbound.received(number(1)), what="the STOP confirmation")
    assert templates_received(await outbound.received(number(1))) == []
    for other in (number(0), number(2)):
        assert templates_received(await outbound.received(other)) == ["new_arrivals"]


async def test_with_the_toggle_off_a_contact_who_opts_out_after_planning_is_sent_to(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start_campaigns(
        aiohttp_client,
        tmp_path,
        clock,
        OUTBOUND_WORKER=False,
        # No status notifications come back: the sender's own "sent" is the one recorded
        # (a notification could otherwise record it first, without the sender's details).
        SIMULATOR_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/webhook",
    )
    outbound = campaigns.outbound
    broadcast_id = await planned_broadcast(campaigns, opted_in_only=False)

    await opts_out(outbound, number(1), "user_preferences_stop")
    async with sending(outbound):
        done = await campaigns.wait_for_broadcast(broadcast_id, "completed")

    assert (done["counts"]["sent"], done["counts"]["skipped"]) == (3, 0)
    for wa_id in (number(0), number(1), number(2)):
        assert templates_received(await outbound.received(wa_id)) == ["new_arrivals"]
    report = await campaigns.get(f"/api/v1/broadcasts/{broadcast_id}/report")
    notices = {}
    for row in report["rows"]:
        message = await outbound.message(row["message_id"])
        [sent] = [h for h in message["history"] if h["status"] == "sent"]
        notices[row["to"]] = sent["details"].get("notice")
    assert notices == {number(0): None, number(1): "quality_rating_risk", number(2): None}


async def test_an_api_marketing_message_fails_when_the_contact_opted_out_before_it_went(
    campaigns: Campaigns, clock: FrozenClock
) -> None:
    outbound = campaigns.outbound
    [ann, bob] = await campaigns.import_contacts(2)
    marketing = await outbound.send(to=ann, template=NEW_ARRIVALS)
    utility = await outbound.send(to=ann, template=ORDER_UPDATE)
    other = await outbound.send(to=bob, template=NEW_ARRIVALS)
    assert marketing["status"] == utility["status"] == other["status"] == "queued"

    await opts_out(outbound, ann, "user_preferences_stop")
    async with sending(outbound):
        failed = await outbound.wait_for(marketing["id"], "failed")
        await outbound.wait_for(utility["id"], *SENT)
        await outbound.wait_for(other["id"], *SENT)

    assert failed["failure"]["code"] == "marketing_opt_out"
    response = await outbound.client.get("/api/v1/reports/messages", params={"status": "failed"})
    assert response.status == 200
    report = await response.json()
    [row] = report["rows"]
    assert (row["id"], row["to"], row["channel"]) == (marketing["id"], ann, "api")
    assert row["failure"]["code"] == "marketing_opt_out"
    assert "MARKETING templates are not sent to them" in row["failure"]["reason"]
    # The UTILITY template still went to the contact who opted out; the MARKETING one not.
    assert templates_received(await outbound.received(ann)) == ["order_update"]


async def test_bot_and_confirmed_compose_messages_still_go_and_unconfirmed_compose_fails(
    campaigns: Campaigns, clock: FrozenClock
) -> None:
    outbound = campaigns.outbound
    [ann] = await campaigns.import_contacts(1)
    store = outbound.app[STORE]
    new_arrivals = TemplateContent(**NEW_ARRIVALS)

    async with store.read() as tx:
        contact = await tx.contacts.get(ann)
    assert contact is not None
    bot, unconfirmed, confirmed = await enqueue_all(
        store,
        clock,
        [
            OutboundRequest(contact, Channel.BOT, new_arrivals),
            OutboundRequest(contact, Channel.COMPOSE, new_arrivals),
            OutboundRequest(
                contact, Channel.COMPOSE, new_arrivals, Options(confirmed_opted_out=True)
            ),
        ],
    )
    await opts_out(outbound, ann, "text_stop_keyword")
    async with sending(outbound):
        await outbound.wait_for(bot, *SENT)
        failed = await outbound.wait_for(unconfirmed, "failed")
        await outbound.wait_for(confirmed, *SENT)

    assert failed["failure"]["code"] == "marketing_opt_out_confirmation_required"
    assert "confirm to send" in failed["failure"]["reason"]
    assert templates_received(await outbound.received(ann)) == ["new_arrivals", "new_arrivals"]


async def test_a_queued_marketing_step_fails_and_the_contact_still_moves_on(
    campaigns: Campaigns,
) -> None:
    drip = campaigns
    outbound = drip.outbound
    [ann] = await drip.import_contacts(1)
    created = await drip.post(
        "/api/v1/sequences",
        {
            "name": "Drip",
            "steps": [
                {"delay_seconds": 0, "template": NEW_ARRIVALS},
                {"delay": "1h", "template": ORDER_UPDATE},
            ],
        },
        201,
    )
    sequence_id = created["id"]
    await drip.post(f"/api/v1/sequences/{sequence_id}/enrollments", {"wa_id": ann}, 201)
    await outbound.app[CAMPAIGNS].run_once()
    record = await drip.enrolment(sequence_id, ann)
    assert [s["status"] for s in record["steps"]] == ["queued", "pending"]

    await opts_out(outbound, ann, "user_preferences_stop")
    async with sending(outbound):

        async def steps() -> dict[str, Any] | None:
            found = await drip.enrolment(sequence_id, ann)
            statuses = [s["status"] for s in found["steps"]]
            return found if statuses[0] == "failed" and statuses[1] in SENT else None

        await outbound.wait_for(record["steps"][0]["message_id"], "failed")
        drip.advance(hours=1)
        record = await eventually(steps, what="step 0 failed and step 1 sent")

    assert record["steps"][0]["failure"]["code"] == "marketing_opt_out"
    assert record["state"] == "completed"
    assert templates_received(await outbound.received(ann)) == ["order_update"]


async def test_a_queued_message_without_its_rule_inputs_fails_instead_of_going(
    campaigns: Campaigns, tmp_path: Path
) -> None:
    """A row queued before the rules' inputs were kept on it, whose template the migration
    could not find in the catalogue, has no content kind: nothing says it may go, so the
    sender fails it (and the contact's next message still goes)."""
    outbound = campaigns.outbound
    [ann] = await campaigns.import_contacts(1)
    unknown = await outbound.send(to=ann, template=ORDER_UPDATE)
    known = await outbound.send(to=ann, template=ORDER_UPDATE)
    execute(
        database_url(tmp_path / "optinflow.db"),
        "UPDATE messages SET content_kind = NULL WHERE id = $1",
        unknown["id"],
    )

    async with sending(outbound):
        failed = await outbound.wait_for(unknown["id"], "failed")
        await outbound.wait_for(known["id"], *SENT)

    assert failed["failure"]["code"] == "send_rules_inputs_missing"
    assert "not sent" in failed["failure"]["reason"]
    assert templates_received(await outbound.received(ann)) == ["order_update"]


async def test_a_queued_message_without_its_request_body_fails_instead_of_being_rebuilt(
    campaigns: Campaigns, tmp_path: Path
) -> None:
    """A row queued before request bodies were stored at enqueue has nothing to post:
    the sender fails it rather than building a body from its content and today's
    catalogue (and the contact's next message still goes)."""
    outbound = campaigns.outbound
    [ann] = await campaigns.import_contacts(1)
    old = await outbound.send(to=ann, template=ORDER_UPDATE)
    new = await outbound.send(to=ann, template=ORDER_UPDATE)
    execute(
        database_url(tmp_path / "optinflow.db"),
        "UPDATE messages SET request_body = NULL WHERE id = $1",
        old["id"],
    )

    async with sending(outbound):
        failed = await outbound.wait_for(old["id"], "failed")
        await outbound.wait_for(new["id"], *SENT)

    assert failed["failure"]["code"] == "request_body_missing"
    assert "not sent" in failed["failure"]["reason"]
    assert templates_received(await outbound.received(ann)) == ["order_update"]

"""The sender reads the template as Meta runs it at the moment of sending.

The real server, its built-in simulator (whose template changes reach our webhook as
Meta's template webhooks, signed) and a real database. Messages are queued first and the
sender started afterwards (``sending``), so what changes in between is what the sender
finds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.web.keys import SENDER
from tests.campaign_support import NEW_ARRIVALS, ORDER_UPDATE, Campaigns, number, start_campaigns
from tests.outbound_support import eventually
from tests.test_outbound_send_time_policy import sending

DELIVERED = ("delivered", "read")


@pytest.fixture
async def campaigns(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    """Nothing is sent until the test says so (:func:`sending`)."""
    return await start_campaigns(aiohttp_client, tmp_path, clock, OUTBOUND_WORKER=False)


async def meta_changes(campaigns: Campaigns, template: str, **change: str) -> None:
    """Meta changes ``template`` (the simulator posts its webhook to ours) and the
    catalogue follows."""
    response = await campaigns.client.put(f"/simulator/templates/{template}/en_US", json=change)
    assert response.status == 200, await response.text()

    async def followed() -> bool:
        entry = await campaigns.get(f"/api/v1/templates/{template}/en_US")
        return all(entry[key] == value for key, value in change.items())

    await eventually(followed, what=f"the catalogue to show {template} {change}")


async def api_message(campaigns: Campaigns, to: str, template: dict[str, Any]) -> str:
    sent = await campaigns.post("/api/v1/messages", {"to": to, "template": template}, 202)
    assert sent["status"] == "queued"
    return str(sent["id"])


async def test_a_queued_utility_message_recategorised_as_marketing_obeys_the_opt_out(
    campaigns: Campaigns,
) -> None:
    outbound = campaigns.outbound
    await campaigns.import_contacts(2, opted_out={0})
    # A UTILITY template goes to an opted-out contact, so it is queued for both...
    to_opted_out = await api_message(campaigns, number(0), ORDER_UPDATE)
    to_opted_in = await api_message(campaigns, number(1), ORDER_UPDATE)
    # ...then Meta recategorises it as MARKETING while they wait.
    await meta_changes(campaigns, "order_update", category="MARKETING")

    async with sending(outbound):
        failed = await outbound.wait_for(to_opted_out, "failed")
        await outbound.wait_for(to_opted_in, *DELIVERED)
    assert failed["failure"]["code"] == "marketing_opt_out"
    assert "opted out of marketing" in failed["failure"]["reason"]
    assert failed["attempts"] == 0, "never posted"
    assert await outbound.received(number(0)) == []
    response = await campaigns.client.get("/api/v1/reports/messages", params={"channel": "api"})
    report = await response.json()
    assert {row["id"]: row["status"] for row in report["rows"]}[to_opted_out] == "failed"
    # Meta priced the one that went as what it was when it went: marketing.
    assert report["billing"]["by_category"] == {"marketing": {"messages": 1, "billable": 1}}


async def test_a_template_meta_paused_is_refused_to_the_api_and_queued_ones_wait(
    campaigns: Campaigns, clock: FrozenClock
) -> None:
    outbound = campaigns.outbound
    await campaigns.import_contacts(3)
    waiting = await api_message(campaigns, number(0), ORDER_UPDATE)
    await meta_changes(campaigns, "order_update", status="PAUSED")

    # A new message with it is refused, naming why.
    response = await campaigns.client.post(
        "/api/v1/messages", json={"to": number(1), "template": ORDER_UPDATE}
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "template_paused"
    assert error["fields"][0]["field"] == "template"
    assert "PAUSED" in error["message"]

    async with sending(outbound):
        sender = outbound.app[SENDER]

        async def set_aside() -> dict[str, Any] | None:
            found = await outbound.message(waiting)
            return found if found["waits_for_template"] else None

        found = await eventually(set_aside, what="the queued message to wait for its template")
        assert (found["status"], found["waits_for_template"]) == ("queued", "order_update/en_US")
        assert found["history"][-1]["failure"]["code"] == "template_paused"
        entry = await campaigns.get("/api/v1/templates/order_update/en_US")
        assert (entry["status"], entry["waiting_messages"]) == ("PAUSED", 1)

        # It is not claimed again and again: other messages go by, it stays put.
        claimed = sender.stats.claimed
        other = await api_message(campaigns, number(2), NEW_ARRIVALS)
        outbound.advance(3600)
        await outbound.wait_for(other, *DELIVERED)
        assert sender.stats.claimed == claimed + 1
        assert (await outbound.message(waiting))["status"] == "queued"
        assert await outbound.received(number(0)) == []

        # Reinstated: it goes.
        await meta_changes(campaigns, "order_update", status="APPROVED")
        delivered = await outbound.wait_for(waiting, *DELIVERED)
    assert delivered["waits_for_template"] is None
    assert [h["status"] for h in delivered["history"]][:3] == ["queued", "queued", "sent"]
    assert len(await outbound.received(number(0))) == 1


async def test_a_broadcast_whose_template_meta_paused_pauses(campaigns: Campaigns) -> None:
    outbound = campaigns.outbound
    await campaigns.import_contacts(5, tags="spring")
    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Spring", "template": NEW_ARRIVALS, "tags": ["spring"]},
        201,
    )
    await meta_changes(campaigns, "new_arrivals", status="PAUSED")
    async with sending(outbound):
        paused = await campaigns.wait_for_broadcast(created["id"], "paused")
    assert paused["paused"]["reason"] == "template_paused"
    assert paused["paused"]["by"] == "meta"
    assert await outbound.received() == []


async def test_a_sequence_step_whose_template_meta_paused_waits(
    campaigns: Campaigns,
) -> None:
    from engine.web.keys import CAMPAIGNS
    from tests.test_web_sequences import step_statuses

    outbound = campaigns.outbound
    await campaigns.import_contacts(1)
    created = await campaigns.post(
        "/api/v1/sequences",
        {"name": "Orders", "steps": [{"delay_seconds": 0, "template": ORDER_UPDATE}]},
        201,
    )
    await meta_changes(campaigns, "order_update", status="PAUSED")
    await campaigns.post(
        f"/api/v1/sequences/{created['id']}/enrollments", {"wa_id": number(0)}, 201
    )
    worker = outbound.app[CAMPAIGNS]
    await worker.run_once()
    campaigns.advance(minutes=10)
    await worker.run_once()
    found = await campaigns.enrolment(created["id"], number(0))
    assert [step["status"] for step in found["steps"]] == ["pending"]
    assert found["state"] == "active"

    await meta_changes(campaigns, "order_update", status="APPROVED")
    async with sending(outbound):
        campaigns.advance(minutes=5)  # the step looks again a quarter of an hour later
        await step_statuses(campaigns, created["id"], number(0), "sent|delivered|read")
    assert len(await outbound.received(number(0))) == 1

"""Meta's per-user marketing limit (131049) defers a message and it is tried again hours
later (the test's clock, never a real wait); after the last try it fails with the
reason. The broadcast quality guard does not count it as a refusal. Meta's pricing of
every status is kept per message and summed by category in the reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from tests.campaign_support import NEW_ARRIVALS, SPRING_SALE, Campaigns, number, start_campaigns
from tests.outbound_support import eventually

DELIVERED = ("delivered", "read")


async def start(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, **more: Any) -> Campaigns:
    values: dict[str, Any] = {"MARKETING_LIMIT_RETRY_HOURS": 6, "MARKETING_LIMIT_RETRIES": 2}
    values.update(more)
    return await start_campaigns(aiohttp_client, tmp_path, clock, **values)


@pytest.mark.parametrize("delivery", ["webhook", "response"])
async def test_a_message_meta_held_back_goes_hours_later(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, delivery: str
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock)
    outbound = campaigns.outbound
    await campaigns.import_contacts(1)
    # As Meta does it: a failed status after accepting it (or, rarely, in the answer).
    await outbound.fail(number(0), 131049, times=1, delivery=delivery)
    sent = await campaigns.post("/api/v1/messages", {"to": number(0), "template": SPRING_SALE}, 202)

    deferred = await outbound.wait_for(sent["id"], "deferred")
    assert deferred["deferrals"] == 1
    assert deferred["next_attempt_at"] == "2026-03-02T15:00:00Z"  # six hours on
    assert deferred["failure"] is None
    [held] = [h for h in deferred["history"] if h["status"] == "deferred"]
    assert held["failure"]["code"] == "131049"
    report = await (await campaigns.client.get("/api/v1/reports/messages")).json()
    assert report["counts"]["deferred"] == 1

    campaigns.advance(hours=5)
    assert (await outbound.message(sent["id"]))["status"] == "deferred"
    campaigns.advance(hours=1)
    delivered = await outbound.wait_for(sent["id"], *DELIVERED)
    assert delivered["attempts"] == 2
    first, second = await outbound.received(number(0))
    assert second["wamid"] == delivered["wamid"] != first["wamid"]
    assert delivered["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "marketing",
    }


async def test_after_the_last_try_it_fails_with_the_reason(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock, MARKETING_LIMIT_RETRIES=1)
    outbound = campaigns.outbound
    await campaigns.import_contacts(1)
    await outbound.fail(number(0), 131049, times=2)
    sent = await campaigns.post("/api/v1/messages", {"to": number(0), "template": SPRING_SALE}, 202)
    await outbound.wait_for(sent["id"], "deferred")
    campaigns.advance(hours=6)
    failed = await outbound.wait_for(sent["id"], "failed")
    assert failed["failure"]["code"] == "131049"
    assert "healthy ecosystem engagement" in failed["failure"]["reason"]
    assert "after 2 tries 6 hours apart" in failed["failure"]["reason"]
    assert len(await outbound.received(number(0))) == 2


async def test_the_quality_guard_does_not_pause_a_broadcast_for_131049(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(
        aiohttp_client,
        tmp_path,
        clock,
        BROADCAST_GUARD_SAMPLE=10,
        BROADCAST_GUARD_MAX_FAILURE_SHARE=0.3,
    )
    await campaigns.import_contacts(10, tags="spring")
    for index in range(4):  # 40% of the sample: a refusal share the guard would pause for
        await campaigns.outbound.fail(number(index), 131049, times=1)
    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Spring", "template": NEW_ARRIVALS, "tags": ["spring"]},
        201,
    )

    async def four_deferred() -> dict[str, Any] | None:
        found = await campaigns.broadcast(created["id"])
        counts = found["counts"]
        settled = counts["deferred"] == 4 and counts["read"] == 6
        return found if settled else None

    found = await eventually(four_deferred, what="four deferred and six read")
    assert (found["state"], found["guard"], found["paused"]) == ("sending", "watching", None)
    campaigns.advance(hours=6)
    await campaigns.wait_for_broadcast(created["id"], "completed")

    async def all_read() -> dict[str, Any] | None:
        found = await campaigns.broadcast(created["id"])
        return found if found["counts"]["read"] == 10 else None

    done = await eventually(all_read, what="all ten read")
    assert done["counts"]["failed"] == done["counts"]["deferred"] == 0
    assert done["billing"] == {
        "by_category": {"marketing": {"messages": 10, "billable": 10}},
        "billable": 10,
    }
    report = await campaigns.get(f"/api/v1/broadcasts/{created['id']}/report")
    assert report["billing"] == done["billing"]

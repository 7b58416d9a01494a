"""Several business numbers end to end: the real server, its built-in simulator serving
every registered number, statuses back through the signed webhook.

A customer who writes to number B is answered from B; a broadcast on A goes from A;
each number keeps its own rate; a marketing broadcast pauses when its number turns RED
or is flagged (Meta's quality update, emitted by the simulator); and planning keeps
within a number's daily limit of unique customers, the rest waiting for the rolling
24 hours."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.devtools.simulator import SIMULATOR
from tests.campaign_support import NEW_ARRIVALS, ORDER_UPDATE, Campaigns, start_campaigns
from tests.conftest import SAMPLE_PHONE_NUMBER_ID
from tests.inbound_support import ANN
from tests.outbound_support import eventually
from tests.test_app_conversation import MENU, customer_sends, from_ann

A = SAMPLE_PHONE_NUMBER_ID
B = "106540352242923"


@pytest.fixture
async def campaigns(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    # Renew the number leases often, so a number registered during the test is taken
    # up (with its own rate) within a fraction of a second.
    return await start_campaigns(aiohttp_client, tmp_path, clock, OUTBOUND_NUMBER_LEASE_SECONDS=0.3)


async def register(
    campaigns: Campaigns, phone_number_id: str, display: str, rate: int | None = None
) -> None:
    body: dict[str, Any] = {"phone_number_id": phone_number_id, "display_phone_number": display}
    if rate is not None:
        body["rate_limit"] = rate
    await campaigns.post("/api/v1/numbers", body, 201)


async def sent_from(campaigns: Campaigns, to: str | None = None) -> list[tuple[str, str]]:
    """(number, recipient) of every message the simulator accepted, in order."""
    return [(m["phone_number_id"], m["to"]) for m in await campaigns.received(to) if m["wamid"]]


def with_metadata(data: dict[str, Any], phone_number_id: str, display: str) -> dict[str, Any]:
    data["entry"][0]["changes"][0]["value"]["metadata"] = {
        "display_phone_number": display,
        "phone_number_id": phone_number_id,
    }
    return data


async def test_the_bot_answers_from_the_number_the_customer_wrote_to(
    campaigns: Campaigns,
) -> None:
    await register(campaigns, B, "15550783882")
    outbound = campaigns.outbound
    await customer_sends(
        outbound, with_metadata(from_ann("hi", wamid="wamid.b1"), B, "15550783882")
    )

    async def answered(count: int) -> list[tuple[str, str]] | None:
        got = await sent_from(campaigns, ANN)
        return got if len(got) >= count else None

    first = await eventually(lambda: answered(1), what="the bot's answer")
    assert first == [(B, ANN)]
    reply = next(m for m in await campaigns.received(ANN) if m["wamid"])
    assert reply["body"]["interactive"]["body"]["text"] == MENU
    # Its statuses came back with B's metadata and were applied: delivered, then read.
    message = (await campaigns.get("/api/v1/reports/messages"))["rows"][0]
    await outbound.wait_for(message["id"], "read")
    detail = await outbound.message(message["id"])
    assert detail["phone_number_id"] == B

    # Writing to A next, the customer is answered from A.
    await customer_sends(
        outbound, with_metadata(from_ann("hi", wamid="wamid.a1"), A, "15550783881")
    )
    both = await eventually(lambda: answered(2), what="the second answer")
    assert both == [(B, ANN), (A, ANN)]


async def test_a_broadcast_goes_from_its_number(campaigns: Campaigns) -> None:
    await register(campaigns, B, "15550783882")
    numbers = await campaigns.import_contacts(3, tags="spring")
    on_a = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "on A", "template": NEW_ARRIVALS, "tags": ["spring"], "phone_number_id": A},
        201,
    )
    await campaigns.wait_for_broadcast(on_a["id"], "completed")
    assert sorted(await sent_from(campaigns)) == sorted((A, n) for n in numbers)
    on_b = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "on B", "template": ORDER_UPDATE, "tags": ["spring"], "phone_number_id": B},
        201,
    )
    await campaigns.wait_for_broadcast(on_b["id"], "completed")
    assert sorted(await sent_from(campaigns))[3:] == sorted((B, n) for n in numbers)


async def test_each_number_keeps_its_own_rate(campaigns: Campaigns) -> None:
    slow = "106540352242924"
    await register(campaigns, slow, "15550783884", rate=4)
    count = 9
    # Other customers on each number: a customer gets one message at a time, which would
    # tie the two numbers' sends together.
    for index in range(count):
        for number, customer in ((A, index), (slow, 100 + index)):
            await campaigns.post(
                "/api/v1/messages",
                {
                    "to": f"1650555{customer:04d}",
                    "template": ORDER_UPDATE,
                    "phone_number_id": number,
                },
                202,
            )

    async def all_sent() -> bool:
        return len(await sent_from(campaigns)) == 2 * count

    await eventually(all_sent, what="every message sent", within=20)
    simulator = campaigns.outbound.app[SIMULATOR]
    moments: dict[str, list[float]] = {A: [], slow: []}
    for record in simulator.received():
        if record.wamid:
            moments[record.phone_number_id].append(record.monotonic)
    span = max(moments[slow]) - min(moments[slow])
    # 9 messages at 4 a second take (9 - 1) / 4 = 2 s at least; A (1000 a second) is
    # not held to the slow number's pace: some of its messages go together.
    assert span >= (count - 1) / 4 - 0.05
    ordered = sorted(moments[A])
    assert min(later - earlier for earlier, later in pairwise(ordered)) < 0.2


@pytest.mark.parametrize(
    "health",
    [{"event": "DOWNGRADE", "quality_rating": "RED"}, {"event": "FLAGGED"}],
    ids=["red", "flagged"],
)
async def test_a_marketing_broadcast_pauses_when_its_number_falls(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, health: dict[str, str]
) -> None:
    # Slow sending (the sender claims only a quarter second ahead), so the broadcast is
    # still being sent when the number falls.
    campaigns = await start_campaigns(
        aiohttp_client, tmp_path, clock, OUTBOUND_RATE_LIMIT=10, OUTBOUND_NUMBER_LEASE_SECONDS=0.3
    )
    slow = "106540352242925"
    await register(campaigns, slow, "15550783885")
    await campaigns.import_contacts(40, tags="spring")
    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "spring", "template": NEW_ARRIVALS, "tags": ["spring"], "phone_number_id": slow},
        201,
    )

    async def some_sent() -> bool:
        return len(await sent_from(campaigns)) >= 2

    await eventually(some_sent, what="the broadcast to be sending")
    emitted = await campaigns.post("/simulator/quality", {"phone_number_id": slow, **health}, 202)
    change = emitted["entry"][0]["changes"][0]
    assert change["field"] == "phone_number_quality_update"
    assert change["value"]["display_phone_number"] == "15550783885"

    paused = await campaigns.wait_for_broadcast(created["id"], "paused")
    assert paused["paused"]["by"] == "number_health"
    assert "15550783885" in paused["paused"]["reason"]
    assert "resume" in paused["paused"]["reason"]

    async def settled() -> int | None:
        counts = (await campaigns.broadcast(created["id"]))["counts"]
        return None if counts["sending"] else len(await sent_from(campaigns))

    sent_when_paused = await eventually(settled, what="nothing in flight")
    assert sent_when_paused < 40
    number = await campaigns.get(f"/api/v1/numbers/{slow}")
    assert number["quality_rating"] == health.get("quality_rating", "UNKNOWN")
    assert number["flagged"] is (health["event"] == "FLAGGED")
    campaigns.advance(hours=1)  # held: time passing does not send the rest
    assert len(await sent_from(campaigns)) == sent_when_paused

    # A utility broadcast on the same number is not marketing: it goes (to customers
    # other than those whose held marketing message is first in their queue).
    await campaigns.import_contacts(5, tags="orders", start=100)
    utility = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "orders", "template": ORDER_UPDATE, "tags": ["orders"], "phone_number_id": slow},
        201,
    )
    done = await campaigns.wait_for_broadcast(utility["id"], "completed")
    assert done["counts"]["failed"] == 0


async def test_planning_keeps_within_the_numbers_daily_limit(campaigns: Campaigns) -> None:
    limited = "106540352242926"
    await register(campaigns, limited, "15550783886")
    await campaigns.post(
        "/simulator/quality",
        {"phone_number_id": limited, "event": "DOWNGRADE", "current_limit": "TIER_50"},
        202,
    )

    async def tier_known() -> bool:
        number = await campaigns.get(f"/api/v1/numbers/{limited}")
        return number["daily_limit"] == 50  # type: ignore[no-any-return]

    await eventually(tier_known, what="the quality update to arrive")
    await campaigns.import_contacts(60, tags="spring")
    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "big", "template": ORDER_UPDATE, "tags": ["spring"], "phone_number_id": limited},
        201,
    )

    async def fifty_sent() -> int | None:
        sent = len(await sent_from(campaigns))
        assert sent <= 50, "more than the daily limit went out"
        return sent if sent == 50 else None

    await eventually(fifty_sent, what="the first 50 to be sent", within=60)
    held_back = await campaigns.broadcast(created["id"])
    assert (held_back["state"], held_back["planned"], held_back["planning_done"]) == (
        "sending",
        50,
        False,
    )
    campaigns.advance(hours=23)  # still within the 24 hours of the first sends
    await campaigns.wait_for_broadcast(created["id"], "sending")
    assert (await campaigns.broadcast(created["id"]))["planned"] == 50

    campaigns.advance(hours=1, minutes=1)  # the first sends are a day old: room again

    async def completed() -> dict[str, Any] | None:
        response = await campaigns.client.get(f"/api/v1/broadcasts/{created['id']}")
        if response.status == 503:  # a busy store sheds the poll: look again
            return None
        assert response.status == 200, await response.text()
        found: dict[str, Any] = await response.json()
        return found if found["state"] == "completed" else None

    done = await eventually(completed, what="the rest to be sent", within=60)
    assert done["planned"] == 60
    assert len(await sent_from(campaigns)) == 60

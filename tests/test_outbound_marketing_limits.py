"""Marketing quiet hours and the frequency cap, end to end: the real server, its built-in
simulator (what reached the Cloud API) and a real database.

The test contacts have US numbers of the 650 area (America/Los_Angeles, UTC-8 in early
March); the clock starts at 09:00 UTC, which is 01:00 for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.config import InvalidSettings, load_settings
from engine.models.contact import Contact
from engine.models.content import TemplateContent
from engine.models.message import Channel
from engine.outbound.enqueue import OutboundRequest
from engine.web.keys import STORE
from tests.campaign_support import NEW_ARRIVALS, ORDER_UPDATE, Campaigns, number, start_campaigns
from tests.desk import add_agent
from tests.outbound_support import enqueue_all, eventually

SENT = ("sent", "delivered", "read")


def templates_received(received: list[dict[str, Any]]) -> list[str]:
    return [r["body"]["template"]["name"] for r in received if r["type"] == "template"]


async def limited(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, **env: Any) -> Campaigns:
    return await start_campaigns(aiohttp_client, tmp_path, clock, **env)


async def test_api_marketing_waits_for_the_end_of_the_contacts_quiet_hours(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await limited(aiohttp_client, tmp_path, clock, MARKETING_QUIET_HOURS="21:00-09:00")
    outbound = campaigns.outbound
    [ann, bob] = await campaigns.import_contacts(2)
    response = await outbound.client.patch(
        f"/api/v1/contacts/{bob}", json={"attributes": {"timezone": "Europe/London"}}
    )
    assert response.status == 200, await response.text()

    held = await outbound.send(to=ann, template=NEW_ARRIVALS)
    utility = await outbound.send(to=ann, template=ORDER_UPDATE)
    london = await outbound.send(to=bob, template=NEW_ARRIVALS)

    # 01:00 in California: the MARKETING template waits until 09:00 there (17:00 UTC);
    # the UTILITY one queued after it goes now; 09:00 in London is outside quiet hours.
    assert held["status"] == "queued"
    assert held["held_until"] == "2026-03-02T17:00:00Z"
    await outbound.wait_for(utility["id"], *SENT)
    await outbound.wait_for(london["id"], *SENT)
    assert templates_received(await outbound.received(ann)) == ["order_update"]
    assert (await outbound.message(held["id"]))["status"] == "queued"
    response = await outbound.client.get("/api/v1/reports/messages", params={"status": "queued"})
    [row] = (await response.json())["rows"]
    assert (row["id"], row["held_until"]) == (held["id"], "2026-03-02T17:00:00Z")

    campaigns.advance(hours=7, minutes=59)
    assert (await outbound.message(held["id"]))["status"] == "queued"
    campaigns.advance(minutes=1)
    went = await outbound.wait_for(held["id"], *SENT)
    assert went["held_until"] == "2026-03-02T17:00:00Z"
    assert templates_received(await outbound.received(ann)) == ["order_update", "new_arrivals"]
    [sent] = [h for h in went["history"] if h["status"] == "sent"]
    assert sent["at"] >= "2026-03-02T17:00:00"


async def test_the_frequency_cap_fails_api_marketing_over_it_and_lets_others_go(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await limited(aiohttp_client, tmp_path, clock, MARKETING_FREQUENCY_CAP="2/7d")
    outbound = campaigns.outbound
    [ann] = await campaigns.import_contacts(1)

    # Three queued in one transaction (none handed over yet, so enqueue lets all three
    # through): the sender counts what was handed over as it claims each.
    response = await campaigns.client.get(f"/api/v1/contacts/{ann}")
    contact = Contact.model_validate(await response.json())
    request = OutboundRequest(contact, Channel.API, TemplateContent(**NEW_ARRIVALS))
    ids = await enqueue_all(outbound.app[STORE], clock, [request] * 3)
    queued = [await outbound.message(message_id) for message_id in ids]
    outcomes = [await outbound.wait_for(m["id"], *SENT, "failed") for m in queued]
    assert [m["status"] in SENT for m in outcomes] == [True, True, False]
    assert outcomes[2]["failure"]["code"] == "frequency_cap"
    assert "MARKETING_FREQUENCY_CAP" in outcomes[2]["failure"]["reason"]

    # Asked at enqueue: failed at once, with the reason; UTILITY is not capped.
    over = await outbound.send(to=ann, template=NEW_ARRIVALS)
    assert (over["status"], over["failure"]["code"]) == ("failed", "frequency_cap")
    utility = await outbound.send(to=ann, template=ORDER_UPDATE)
    await outbound.wait_for(utility["id"], *SENT)

    # The period rolls: a week after the first two, there is room again.
    campaigns.advance(days=7, seconds=1)
    again = await outbound.send(to=ann, template=NEW_ARRIVALS)
    await outbound.wait_for(again["id"], *SENT)
    assert templates_received(await outbound.received(ann)).count("new_arrivals") == 3


async def test_a_broadcast_holds_for_quiet_hours_and_skips_contacts_over_the_cap(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await limited(
        aiohttp_client,
        tmp_path,
        clock,
        MARKETING_QUIET_HOURS="21:00-09:00",
        MARKETING_FREQUENCY_CAP="1/7d",
    )
    outbound = campaigns.outbound
    await campaigns.import_contacts(3, tags="spring")
    # Contact 0 has had this week's marketing already (in London, outside quiet hours).
    response = await outbound.client.patch(
        f"/api/v1/contacts/{number(0)}", json={"attributes": {"timezone": "Europe/London"}}
    )
    assert response.status == 200
    earlier = await outbound.send(to=number(0), template=NEW_ARRIVALS)
    await outbound.wait_for(earlier["id"], *SENT)

    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Spring", "template": NEW_ARRIVALS, "tags": ["spring"]},
        201,
    )
    broadcast_id = created["id"]

    async def rows() -> dict[str, dict[str, Any]]:
        report = await campaigns.get(f"/api/v1/broadcasts/{broadcast_id}/report")
        return {row["to"]: row for row in report["rows"]}

    async def settled() -> dict[str, dict[str, Any]] | None:
        found = await rows()
        if len(found) < 3 or found[number(0)]["status"] != "skipped":
            return None
        messages = [await outbound.message(found[number(i)]["message_id"]) for i in (1, 2)]
        return found if all(m["held_until"] for m in messages) else None

    found = await eventually(settled, what="the broadcast to be planned and held")
    assert found[number(0)]["failure"]["code"] == "frequency_cap"
    for index in (1, 2):
        message = await outbound.message(found[number(index)]["message_id"])
        assert (message["status"], message["held_until"]) == ("queued", "2026-03-02T17:00:00Z")
    assert templates_received(await outbound.received(number(1))) == []

    campaigns.advance(hours=8)
    done = await campaigns.wait_for_broadcast(broadcast_id, "completed")
    assert done["counts"]["skipped"] == 1
    assert sum(done["counts"][status] for status in SENT) == 2
    assert templates_received(await outbound.received(number(0))) == ["new_arrivals"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MARKETING_QUIET_HOURS", "21:00"),
        ("MARKETING_QUIET_HOURS", "25:00-09:00"),
        ("MARKETING_QUIET_HOURS", "09:00-09:00"),
        ("MARKETING_FREQUENCY_CAP", "2/7w"),
        ("MARKETING_FREQUENCY_CAP", "0/7d"),
        ("MARKETING_FREQUENCY_CAP", "two a week"),
    ],
)
def test_a_malformed_limit_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSettings) as refused:
        load_settings()
    [(named, _)] = refused.value.problems
    assert named == variable


def test_the_limits_are_off_when_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_QUIET_HOURS", "")
    monkeypatch.setenv("MARKETING_FREQUENCY_CAP", "")
    limits = load_settings().marketing_limits
    assert (limits.quiet_hours, limits.frequency_cap) == (None, None)
    assert datetime(2026, 3, 2, tzinfo=UTC)  # the module's clock premise


async def test_a_broadcast_can_set_its_own_quiet_hours_or_none(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await limited(aiohttp_client, tmp_path, clock, MARKETING_QUIET_HOURS="21:00-09:00")
    outbound = campaigns.outbound
    await campaigns.import_contacts(2, tags="spring")
    bad = await campaigns.client.post(
        "/api/v1/broadcasts",
        json={"name": "Bad", "template": NEW_ARRIVALS, "tags": ["spring"], "quiet_hours": "9-5"},
    )
    assert bad.status == 422
    assert "quiet_hours" in await bad.text()

    # 01:00 in California: inside the setting's hours and inside 00:30-01:30, its own.
    own = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Own", "template": NEW_ARRIVALS, "tags": ["spring"], "quiet_hours": "00:30-01:30"},
        201,
    )
    assert own["quiet_hours"] == "00:30-01:30"
    none = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Night", "template": NEW_ARRIVALS, "contacts": [number(0)], "quiet_hours": None},
        201,
    )
    assert none["quiet_hours"] is None
    # No quiet hours: it goes now, while the first waits for 01:30 (09:30 UTC).
    await campaigns.wait_for_broadcast(none["id"], "completed")

    async def held() -> list[dict[str, Any]] | None:
        found = await campaigns.get(f"/api/v1/broadcasts/{own['id']}/report")
        messages = [await outbound.message(row["message_id"]) for row in found["rows"]]
        return messages if len(messages) == 2 and all(m["held_until"] for m in messages) else None

    messages = await eventually(held, what="the broadcast's rows to be held")
    assert {m["held_until"] for m in messages} == {"2026-03-02T09:30:00Z"}
    campaigns.advance(minutes=30)
    await campaigns.wait_for_broadcast(own["id"], "completed")


async def test_compose_shows_the_cap_and_sends_and_the_bot_ignores_it(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:

    campaigns = await limited(
        aiohttp_client,
        tmp_path,
        clock,
        MARKETING_FREQUENCY_CAP="1/24h",
        MARKETING_QUIET_HOURS="21:00-09:00",
    )
    outbound = campaigns.outbound
    [ann] = await campaigns.import_contacts(1)
    await add_agent(campaigns.client, "agent@example.com")

    async def notices() -> list[str]:
        found = await campaigns.get(f"/api/v1/conversations/{ann}")
        return [n["code"] for n in found["notices"]]

    assert await notices() == []
    # A bot sends MARKETING inside quiet hours and whatever the cap: it is not held.
    store = outbound.app[STORE]
    contact = await (await campaigns.client.get(f"/api/v1/contacts/{ann}")).json()
    request = OutboundRequest(
        Contact.model_validate(contact), Channel.BOT, TemplateContent(**NEW_ARRIVALS)
    )
    [bot_id] = await enqueue_all(store, clock, [request])
    await outbound.wait_for(bot_id, *SENT)
    assert await notices() == ["frequency_cap"]  # the bot's message counts

    [again] = await enqueue_all(store, clock, [request])
    await outbound.wait_for(again, *SENT)  # the bot ignores the cap

    response = await campaigns.client.post(
        f"/api/v1/conversations/{ann}/messages",
        json={"agent": "agent@example.com", "template": NEW_ARRIVALS},
    )
    assert response.status == 202, await response.text()
    composed = await response.json()
    assert "frequency_cap" in [n["code"] for n in composed["notices"]]
    await outbound.wait_for(composed["id"], *SENT)
    assert templates_received(await outbound.received(ann)) == ["new_arrivals"] * 3

    api = await outbound.send(to=ann, template=NEW_ARRIVALS)
    assert api["failure"]["code"] == "frequency_cap"

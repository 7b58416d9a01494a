"""Broadcasts end to end: the real server plans them into the outbox, the sender sends them
to the built-in simulator, and statuses come back through the signed webhook."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.models.contact import ConsentSource
from engine.store import Tx
from engine.web.keys import STORE
from engine.web.wire import iso
from tests.campaign_support import (
    NEW_ARRIVALS,
    ORDER_UPDATE,
    SPRING_SALE,
    Campaigns,
    number,
    start_campaigns,
)
from tests.outbound_support import eventually


@pytest.fixture
async def campaigns(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    return await start_campaigns(aiohttp_client, tmp_path, clock)


async def create(campaigns: Campaigns, **body: Any) -> dict[str, Any]:
    return await campaigns.post("/api/v1/broadcasts", {"name": "Spring", **body}, 201)


def sent(counts: dict[str, int]) -> int:
    return counts["sent"] + counts["delivered"] + counts["read"]


async def test_the_spec_example_990_sent_and_10_opted_out_skipped(campaigns: Campaigns) -> None:
    opted_out = set(range(0, 1000, 100))
    await campaigns.import_contacts(1000, opted_out=opted_out, tags="spring")

    created = await create(campaigns, template=SPRING_SALE, tags=["spring"])
    assert (created["total"], created["will_send"], created["excluded_opted_out"]) == (
        1000,
        990,
        10,
    )
    assert created["warnings"] == []

    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    counts = done["counts"]
    assert counts["skipped"] == 10
    assert sent(counts) == 990
    assert counts["queued"] == counts["sending"] == counts["failed"] == 0

    received = await campaigns.received()
    assert len(received) == 990
    assert {r["to"] for r in received}.isdisjoint({number(i) for i in opted_out})
    report = await campaigns.get(f"/api/v1/broadcasts/{created['id']}/report", limit=5000)
    skipped = [row for row in report["rows"] if row["status"] == "skipped"]
    assert {row["to"] for row in skipped} == {number(i) for i in opted_out}
    assert {row["failure"]["code"] for row in skipped} == {"marketing_opt_out"}
    assert "opted out of marketing" in skipped[0]["failure"]["reason"]


async def test_with_the_toggle_off_everyone_is_sent_to_and_the_risk_is_warned(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(1000, opted_out=set(range(0, 1000, 100)), tags="spring")
    body = {"template": SPRING_SALE, "tags": ["spring"], "opted_in_only": False}

    preview = await campaigns.post("/api/v1/broadcasts/preview", body, 200)
    assert (preview["total"], preview["opted_out"], preview["will_send"]) == (1000, 10, 1000)
    [warning] = preview["warnings"]
    assert warning["code"] == "quality_rating_risk"
    assert warning["count"] == 10
    assert "quality rating" in warning["message"]

    created = await create(campaigns, **body)
    assert (created["will_send"], created["excluded_opted_out"]) == (1000, 0)
    assert created["warnings"] == preview["warnings"]

    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    assert sent(done["counts"]) == 1000
    assert done["counts"]["skipped"] == 0
    assert done["warnings"] == preview["warnings"]
    assert len(await campaigns.received()) == 1000


async def test_utility_broadcasts_reach_opted_out_contacts_whatever_the_toggle(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(6, opted_out={1, 4}, tags="orders")

    created = await create(campaigns, template=ORDER_UPDATE, tags=["orders"])
    assert (created["total"], created["will_send"], created["excluded_opted_out"]) == (6, 6, 0)
    assert created["category"] == "UTILITY"
    assert created["warnings"] == []

    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    assert sent(done["counts"]) == 6
    assert {r["to"] for r in await campaigns.received()} == {number(i) for i in range(6)}


async def test_a_contact_who_opts_out_after_creation_is_not_sent_to(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(3, tags="spring")
    send_at = campaigns.clock.now() + timedelta(hours=1)
    created = await create(campaigns, template=NEW_ARRIVALS, tags=["spring"], send_at=iso(send_at))
    assert (created["state"], created["will_send"]) == ("scheduled", 3)

    response = await campaigns.client.patch(
        f"/api/v1/contacts/{number(1)}", json={"marketing_opt_in": False}
    )
    assert response.status == 200
    # Nothing goes before send_at.
    found = await campaigns.broadcast(created["id"])
    assert (found["state"], found["planned"]) == ("scheduled", 0)

    campaigns.advance(hours=1)
    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    assert done["counts"]["skipped"] == 1
    assert sent(done["counts"]) == 2
    assert {r["to"] for r in await campaigns.received()} == {number(0), number(2)}


async def test_cancelling_during_sending_skips_what_was_not_sent(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start_campaigns(aiohttp_client, tmp_path, clock, OUTBOUND_RATE_LIMIT=10)
    await campaigns.import_contacts(40, tags="spring")
    created = await create(campaigns, template=NEW_ARRIVALS, tags=["spring"])

    async def some_sent() -> bool:
        return len(await campaigns.received()) >= 3

    await eventually(some_sent, what="the first messages to be sent")
    cancelled = await campaigns.post(f"/api/v1/broadcasts/{created['id']}/cancel", {}, 200)
    assert cancelled["state"] == "cancelled"
    skipped = cancelled["counts"]["skipped"]
    assert 0 < skipped < 40

    async def settled() -> dict[str, Any] | None:
        found = await campaigns.broadcast(created["id"])
        counts = found["counts"]
        return found if counts["queued"] == counts["sending"] == 0 else None

    done = await eventually(settled, what="the sends under way to finish")
    assert done["counts"]["skipped"] == skipped
    assert sent(done["counts"]) == 40 - skipped
    campaigns.advance(minutes=5)
    assert len(await campaigns.received()) == 40 - skipped
    report = await campaigns.get(f"/api/v1/broadcasts/{created['id']}/report")
    reasons = {r["failure"]["code"] for r in report["rows"] if r["status"] == "skipped"}
    assert reasons == {"cancelled"}
    again = await campaigns.client.post(f"/api/v1/broadcasts/{created['id']}/cancel")
    assert again.status == 409


async def test_a_scheduled_broadcast_cancelled_before_send_at_sends_nothing(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(2, tags="spring")
    send_at = iso(campaigns.clock.now() + timedelta(days=1))
    created = await create(campaigns, template=NEW_ARRIVALS, tags=["spring"], send_at=send_at)
    cancelled = await campaigns.post(f"/api/v1/broadcasts/{created['id']}/cancel", {}, 200)
    assert cancelled["state"] == "cancelled"

    campaigns.advance(days=2)
    await campaigns.post(
        "/api/v1/broadcasts", {"name": "Later", "template": NEW_ARRIVALS, "tags": ["spring"]}, 201
    )

    async def second_done() -> bool:
        return len(await campaigns.received()) == 2

    await eventually(second_done, what="the second broadcast")
    found = await campaigns.broadcast(created["id"])
    assert (found["state"], found["planned"]) == ("cancelled", 0)


async def test_the_quality_guard_pauses_a_broadcast_and_a_person_resumes_it(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    audience = 60
    campaigns = await start_campaigns(
        aiohttp_client,
        tmp_path,
        clock,
        OUTBOUND_RATE_LIMIT=20,
        BROADCAST_GUARD_SAMPLE=10,
        BROADCAST_GUARD_MAX_FAILURE_SHARE=0.3,
    )
    await campaigns.import_contacts(audience, tags="spring")
    # The first recipients (planned, and sent, first) are failed by Meta: 131026 is
    # "Message Undeliverable".
    for index in range(4):
        await campaigns.outbound.fail(number(index), 131026)
    created = await create(campaigns, template=NEW_ARRIVALS, tags=["spring"])

    paused = await campaigns.wait_for_broadcast(created["id"], "paused")
    assert paused["guard"] == "tripped"
    assert paused["paused"]["by"] == "guard"
    reason = paused["paused"]["reason"]
    assert "4 of its first 10 messages" in reason
    assert "131026" in reason
    assert "resume" in reason

    async def all_held() -> dict[str, int] | None:
        """How many messages wait, once every one of them is held and none is in flight."""
        report = await campaigns.get(f"/api/v1/broadcasts/{created['id']}/report")
        statuses = [row["status"] for row in report["rows"]]
        if "sending" in statuses:
            return None
        queued = [row["message_id"] for row in report["rows"] if row["status"] == "queued"]
        for message_id in queued:
            message = await campaigns.get(f"/api/v1/messages/{message_id}")
            if not message["next_attempt_at"].startswith("9999"):
                return None
        return {"waiting": len(queued)}

    waiting = (await eventually(all_held, what="the queued messages to be held"))["waiting"]
    assert waiting > 0, "the guard paused the broadcast before the end"
    campaigns.advance(hours=1)  # held: time passing does not send them
    assert len(await campaigns.received()) == audience - waiting

    resumed = await campaigns.post(f"/api/v1/broadcasts/{created['id']}/resume", {}, 200)
    assert (resumed["state"], resumed["guard"], resumed["paused"]) == (
        "sending",
        "overridden",
        None,
    )
    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    assert done["counts"]["failed"] == 4
    assert sent(done["counts"]) == audience - 4
    assert len(await campaigns.received()) == audience


async def test_a_person_pauses_and_resumes_a_broadcast(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start_campaigns(aiohttp_client, tmp_path, clock)
    await campaigns.import_contacts(3, tags="spring")
    send_at = iso(campaigns.clock.now() + timedelta(hours=1))
    created = await create(campaigns, template=NEW_ARRIVALS, tags=["spring"], send_at=send_at)

    paused = await campaigns.post(f"/api/v1/broadcasts/{created['id']}/pause", {}, 200)
    assert (paused["state"], paused["paused"]["by"]) == ("paused", "api")
    assert (await campaigns.client.post(f"/api/v1/broadcasts/{created['id']}/pause")).status == 409
    campaigns.advance(hours=2)
    found = await campaigns.broadcast(created["id"])
    assert (found["state"], found["planned"]) == ("paused", 0)

    await campaigns.post(f"/api/v1/broadcasts/{created['id']}/resume", {}, 200)
    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    assert sent(done["counts"]) == 3
    resume_again = await campaigns.client.post(f"/api/v1/broadcasts/{created['id']}/resume")
    assert resume_again.status == 409
    assert (await campaigns.client.post("/api/v1/broadcasts/nope/resume")).status == 404
    assert (await campaigns.client.get("/api/v1/broadcasts/nope")).status == 404


async def test_the_audience_combines_contacts_tags_and_attributes(campaigns: Campaigns) -> None:
    await campaigns.import_contacts(4, tags="vip;paris")  # 0-3
    await campaigns.import_contacts(4, tags="vip", start=4)  # 4-7
    await campaigns.import_contacts(4, start=8)  # 8-11, no tags

    given: dict[int, dict[str, Any]] = {
        0: {"plan": "gold", "city": "Paris"},
        4: {"plan": "silver"},
        5: {"plan": "bronze", "score": 1},
        8: {"plan": "gold"},
        9: {"score": True},
    }

    async def attributes(tx: Tx) -> None:
        for index, values in given.items():
            contact = await tx.contacts.get(number(index))
            assert contact is not None
            await tx.contacts.update(contact.id, attributes=values)

    await campaigns.outbound.app[STORE].write(attributes)

    async def total(**audience: Any) -> int:
        body = {"template": NEW_ARRIVALS, **audience}
        return int((await campaigns.post("/api/v1/broadcasts/preview", body, 200))["total"])

    assert await total(tags=["vip"]) == 8
    assert await total(tags=["vip", "paris"], tags_match="all") == 4
    assert await total(tags=["paris", "nobody"]) == 4
    assert await total(contacts=[number(8), "+1 650-555-0009"]) == 2
    assert await total(contacts=[number(8)], tags=["paris"]) == 5  # they add up
    assert await total(attributes=[{"attribute": "plan", "equals": "gold"}]) == 2
    assert await total(tags=["vip"], attributes=[{"attribute": "plan", "equals": "gold"}]) == 1
    assert await total(attributes=[{"attribute": "plan", "in": ["silver", "bronze"]}]) == 2
    assert await total(attributes=[{"attribute": "score", "exists": True}]) == 2
    assert await total(attributes=[{"attribute": "score", "equals": 1}]) == 1  # not true
    assert await total(attributes=[{"attribute": "score", "in": [True, "1"]}]) == 1
    assert await total(tags=["vip"], attributes=[{"attribute": "plan", "exists": False}]) == 5


async def test_the_preview_counts_who_needs_a_template_and_numbers_that_are_not_valid(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(3, tags="spring")

    async def setup(tx: Tx) -> None:
        recent = await tx.contacts.get(number(0))
        assert recent is not None
        await tx.conversations.record_inbound(recent.id, campaigns.clock.now())
        old = await tx.contacts.get(number(1))
        assert old is not None
        await tx.conversations.record_inbound(old.id, campaigns.clock.now() - timedelta(days=2))
        # Meta's wa_ids are not always numbers phonenumbers knows.
        from engine.store.contacts import Consent, NewContact

        await tx.contacts.create(
            NewContact(wa_id="999123", marketing_opt_in=True, tags=("spring",)),
            Consent(ConsentSource.INBOUND),
        )

    await campaigns.outbound.app[STORE].write(setup)
    preview = await campaigns.post(
        "/api/v1/broadcasts/preview", {"template": NEW_ARRIVALS, "tags": ["spring"]}, 200
    )
    assert preview["total"] == 4
    assert preview["needs_template"] == 3  # all but the one who wrote in the last 24 hours
    assert preview["without_valid_number"] == 1
    assert [w["code"] for w in preview["warnings"]] == ["invalid_numbers"]


async def test_the_report_lists_every_recipient_as_json_pages_and_as_csv(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(5, opted_out={2}, tags="spring")
    created = await create(campaigns, template=SPRING_SALE, tags=["spring"])
    await campaigns.wait_for_broadcast(created["id"], "completed")
    path = f"/api/v1/broadcasts/{created['id']}/report"

    first = await campaigns.get(path, limit=3)
    rest = await campaigns.get(path, limit=3, after=first["next_after"])
    rows = first["rows"] + rest["rows"]
    assert rest["next_after"] is None
    assert [row["to"] for row in rows] == [number(i) for i in range(5)]
    assert rows[2]["status"] == "skipped"

    response = await campaigns.client.get(path, params={"format": "csv"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(await response.text())))
    assert [line["to"] for line in table] == [number(i) for i in range(5)]
    assert table[2]["failure_code"] == "marketing_opt_out"
    assert {line["message_id"] for line in table} == {row["message_id"] for row in rows}

    # The messages report knows them as the broadcast channel.
    report = await campaigns.get("/api/v1/reports/messages", channel="broadcast")
    assert {row["to"] for row in report["rows"]} == {number(i) for i in range(5)}
    listed = await campaigns.get("/api/v1/broadcasts")
    assert [b["id"] for b in listed["broadcasts"]] == [created["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template": NEW_ARRIVALS}, "contacts"),
        ({"template": NEW_ARRIVALS, "tags": ["nobody"]}, "tags"),
        ({"template": {**NEW_ARRIVALS, "name": "no_such"}, "tags": ["spring"]}, "template"),
        ({"template": {**NEW_ARRIVALS, "params": []}, "tags": ["spring"]}, "template.params"),
        ({"template": NEW_ARRIVALS, "contacts": [number(0), number(99)]}, "contacts.1"),
        ({"template": NEW_ARRIVALS, "contacts": ["12"]}, "contacts.0"),
        (
            {"template": NEW_ARRIVALS, "tags": ["spring"], "send_at": "2026-03-02T08:00:00Z"},
            "send_at",
        ),
        ({"template": NEW_ARRIVALS, "attributes": [{"attribute": "a"}]}, "attributes.0"),
        ({"template": NEW_ARRIVALS, "tags": ["spring"], "oops": 1}, "oops"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(
    campaigns: Campaigns, body: dict[str, Any], field: str
) -> None:
    await campaigns.import_contacts(1, tags="spring")
    response = await campaigns.client.post("/api/v1/broadcasts", json={"name": "x", **body})
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert field in [f["field"] for f in error["fields"]], error
    assert (await campaigns.get("/api/v1/broadcasts"))["broadcasts"] == []
    preview = await campaigns.client.post(
        "/api/v1/broadcasts/preview", json={k: v for k, v in body.items() if k != "send_at"}
    )
    assert preview.status == (200 if field == "send_at" else 422)


async def test_a_broadcast_names_a_contact_by_user_id_and_reaches_it_with_recipient(
    campaigns: Campaigns,
) -> None:
    user_id = "US.13491208655302741918"
    await campaigns.post("/api/v1/contacts", {"user_id": user_id}, 201)
    await campaigns.import_contacts(1)
    created = await create(campaigns, template=ORDER_UPDATE, contacts=[user_id, number(0)])
    assert (created["total"], created["will_send"], created["warnings"]) == (2, 2, [])
    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    assert sent(done["counts"]) == 2
    [received] = await campaigns.outbound.received(user_id)
    assert received["body"]["recipient"] == user_id

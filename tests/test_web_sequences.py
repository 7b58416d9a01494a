"""Sequences end to end: the real server fires each enrolment's steps as the test's clock
reaches them, the sender sends them to the built-in simulator, and the enrolment record
shows what every step did."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.store import Tx
from engine.web.keys import CAMPAIGNS, STORE
from tests.campaign_support import (
    NEW_ARRIVALS,
    ORDER_UPDATE,
    SPRING_SALE,
    Campaigns,
    number,
    start_campaigns,
)
from tests.outbound_support import eventually

THREE_STEPS = {
    "name": "Welcome drip",
    "steps": [
        {"delay": "1h", "template": ORDER_UPDATE},
        {"delay": "1d", "template": SPRING_SALE},  # MARKETING
        {"delay_seconds": 7200, "template": ORDER_UPDATE},
    ],
}


@pytest.fixture
async def campaigns(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    return await start_campaigns(aiohttp_client, tmp_path, clock)


async def sequence(campaigns: Campaigns, body: dict[str, Any] = THREE_STEPS) -> str:
    created = await campaigns.post("/api/v1/sequences", body, 201)
    return str(created["id"])


async def enrol(campaigns: Campaigns, sequence_id: str, wa_id: str) -> dict[str, Any]:
    return await campaigns.post(
        f"/api/v1/sequences/{sequence_id}/enrollments", {"wa_id": wa_id}, 201
    )


async def step_statuses(
    campaigns: Campaigns, sequence_id: str, wa_id: str, *expected: str
) -> dict[str, Any]:
    """Wait until the enrolment's steps read ``expected`` (a status, or a set of them as
    "sent|delivered|read")."""

    async def reached() -> dict[str, Any] | None:
        found = await campaigns.enrolment(sequence_id, wa_id)
        statuses = [step["status"] for step in found["steps"]]
        matches = len(statuses) == len(expected) and all(
            status in wanted.split("|") for status, wanted in zip(statuses, expected, strict=True)
        )
        return found if matches else None

    return await eventually(reached, what=f"steps of {wa_id} to be {expected}")  # type: ignore[no-any-return]


SENT = "sent|delivered|read"


async def test_a_marketing_step_fails_for_an_opted_out_contact_who_moves_on_on_schedule(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(1, opted_out={0})
    ann = number(0)
    sequence_id = await sequence(campaigns)
    enrolled = await enrol(campaigns, sequence_id, ann)
    assert enrolled["state"] == "active"
    assert [s["status"] for s in enrolled["steps"]] == ["pending"] * 3
    # Every pending step shows when it is due: 1h, then 1d after it, then 2h after that.
    enrolled_at = datetime.fromisoformat(enrolled["enrolled_at"])
    assert [datetime.fromisoformat(s["due_at"]) - enrolled_at for s in enrolled["steps"]] == [
        timedelta(hours=1),
        timedelta(hours=25),
        timedelta(hours=27),
    ]

    campaigns.advance(hours=1)
    await step_statuses(campaigns, sequence_id, ann, SENT, "pending", "pending")

    campaigns.advance(days=1)
    record = await step_statuses(campaigns, sequence_id, ann, SENT, "failed", "pending")
    failed = record["steps"][1]
    assert failed["failure"]["code"] == "marketing_opt_out"
    assert "opted out of marketing" in failed["failure"]["reason"]
    assert failed["message_id"] is not None
    # The next step keeps its schedule: two hours after the failed step was due.
    assert record["steps"][2]["due_at"] == "2026-03-03T12:00:00Z"
    assert record["current_step"] == 2

    campaigns.advance(hours=1, minutes=59)
    await campaigns.outbound.app[CAMPAIGNS].run_once()  # a pass at 1h59m: not due yet
    record = await campaigns.enrolment(sequence_id, ann)
    assert record["steps"][2]["status"] == "pending"
    campaigns.advance(minutes=1)
    record = await step_statuses(campaigns, sequence_id, ann, SENT, "failed", SENT)
    assert record["state"] == "completed"
    assert record["current_step"] is None

    received = await campaigns.received(ann)
    assert [r["body"]["template"]["name"] for r in received] == ["order_update", "order_update"]
    failed_message = await campaigns.get(f"/api/v1/messages/{failed['message_id']}")
    assert (failed_message["channel"], failed_message["status"]) == ("sequence", "failed")
    report = await campaigns.get("/api/v1/reports/messages", channel="sequence")
    assert len(report["rows"]) == 3


async def test_an_opted_in_contact_gets_every_step(campaigns: Campaigns) -> None:
    await campaigns.import_contacts(1)
    sequence_id = await sequence(campaigns)
    await enrol(campaigns, sequence_id, number(0))
    campaigns.advance(hours=1)
    await step_statuses(campaigns, sequence_id, number(0), SENT, "pending", "pending")
    campaigns.advance(days=1)
    await step_statuses(campaigns, sequence_id, number(0), SENT, SENT, "pending")
    campaigns.advance(hours=2)
    await step_statuses(campaigns, sequence_id, number(0), SENT, SENT, SENT)
    names = [r["body"]["template"]["name"] for r in await campaigns.received(number(0))]
    assert names == ["order_update", "spring_sale", "order_update"]


async def test_a_step_due_outside_the_send_window_waits_for_it_in_the_contact_s_time(
    campaigns: Campaigns,
) -> None:
    # The test clock starts at 09:00 UTC: 01:00 in California, 18:00 in Tokyo.
    await campaigns.import_contacts(2)
    tokyo = number(1)

    async def in_tokyo(tx: Tx) -> None:
        contact = await tx.contacts.get(tokyo)
        assert contact is not None
        await tx.contacts.update(contact.id, attributes={"timezone": "Asia/Tokyo"})

    await campaigns.outbound.app[STORE].write(in_tokyo)
    body = {
        "name": "Office hours",
        "steps": [{"delay_seconds": 0, "template": ORDER_UPDATE}],
        "send_window": {"start": "09:00", "end": "17:00"},
    }
    sequence_id = await sequence(campaigns, body)
    california = await enrol(campaigns, sequence_id, number(0))
    japan = await enrol(campaigns, sequence_id, tokyo)
    assert california["steps"][0]["due_at"] == "2026-03-02T17:00:00Z"  # 09:00 PST
    assert japan["steps"][0]["due_at"] == "2026-03-03T00:00:00Z"  # 09:00 JST

    campaigns.advance(hours=8)
    await step_statuses(campaigns, sequence_id, number(0), SENT)
    assert (await campaigns.enrolment(sequence_id, tokyo))["steps"][0]["status"] == "pending"
    campaigns.advance(hours=7)
    await step_statuses(campaigns, sequence_id, tokyo, SENT)


async def test_a_contact_is_in_a_sequence_once_at_a_time_and_unenrolling_stops_it(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(1)
    ann = number(0)
    sequence_id = await sequence(campaigns)
    await enrol(campaigns, sequence_id, ann)
    again = await campaigns.client.post(
        f"/api/v1/sequences/{sequence_id}/enrollments", json={"wa_id": ann}
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "already_enrolled"

    campaigns.advance(hours=1)
    await step_statuses(campaigns, sequence_id, ann, SENT, "pending", "pending")
    response = await campaigns.client.delete(f"/api/v1/sequences/{sequence_id}/enrollments/{ann}")
    assert response.status == 200
    stopped = await response.json()
    assert stopped["state"] == "unenrolled"
    assert [s["status"] for s in stopped["steps"]][1:] == ["cancelled", "cancelled"]

    campaigns.advance(days=3)
    second = await enrol(campaigns, sequence_id, ann)  # enrolling again starts afresh
    assert [s["status"] for s in second["steps"]] == ["pending"] * 3
    assert len(await campaigns.received(ann)) == 1, "nothing went after the unenrolment"
    missing = await campaigns.client.delete(
        f"/api/v1/sequences/{sequence_id}/enrollments/{number(5)}"
    )
    assert missing.status == 404


async def test_editing_a_sequence_never_sends_a_step_of_the_old_version(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(1)
    ann = number(0)
    sequence_id = await sequence(
        campaigns, {"name": "Edited", "steps": [{"delay": "1h", "template": ORDER_UPDATE}]}
    )
    await enrol(campaigns, sequence_id, ann)
    edited = await campaigns.client.put(
        f"/api/v1/sequences/{sequence_id}",
        json={"name": "Edited", "steps": [{"delay": "2h", "template": NEW_ARRIVALS}]},
    )
    assert edited.status == 200
    assert (await edited.json())["version"] == 2

    campaigns.advance(hours=1)

    async def rescheduled() -> bool:
        record = await campaigns.enrolment(sequence_id, ann)
        return bool(record["steps"][0]["due_at"] == "2026-03-02T11:00:00Z")

    await eventually(rescheduled, what="the stale timer to be set again")
    assert await campaigns.received(ann) == []
    campaigns.advance(hours=1)
    await step_statuses(campaigns, sequence_id, ann, SENT)
    [received] = await campaigns.received(ann)
    assert received["body"]["template"]["name"] == "new_arrivals"


async def test_a_text_step_goes_inside_the_24_hour_window_and_fails_outside_it(
    campaigns: Campaigns,
) -> None:
    await campaigns.import_contacts(2)

    async def wrote(tx: Tx) -> None:
        contact = await tx.contacts.get(number(0))
        assert contact is not None
        await tx.conversations.record_inbound(contact.id, campaigns.clock.now())

    await campaigns.outbound.app[STORE].write(wrote)
    sequence_id = await sequence(
        campaigns, {"name": "Nudge", "steps": [{"delay": "1m", "text": "Still there?"}]}
    )
    await enrol(campaigns, sequence_id, number(0))
    await enrol(campaigns, sequence_id, number(1))
    campaigns.advance(minutes=1)
    await step_statuses(campaigns, sequence_id, number(0), SENT)
    closed = await step_statuses(campaigns, sequence_id, number(1), "failed")
    assert closed["steps"][0]["failure"]["code"] == "window_closed"
    assert closed["steps"][0]["message_id"] is None
    assert await campaigns.received(number(1)) == []


async def test_enrolling_from_a_csv_file_and_by_tag(campaigns: Campaigns) -> None:
    await campaigns.import_contacts(3, tags="new")
    sequence_id = await sequence(campaigns)
    csv_body = f"name,phone\nAnn,{number(0)}\nBob,not a number\nCy,+1 650 555 0099\n"
    response = await campaigns.client.post(
        f"/api/v1/sequences/{sequence_id}/enrollments/import",
        data=csv_body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert (answer["enrolled"], answer["already_enrolled"]) == (1, 0)
    assert [e["line"] for e in answer["errors"]] == [3, 4]
    assert "no contact 16505550099" in answer["errors"][1]["message"]

    by_tag = await campaigns.post(
        f"/api/v1/sequences/{sequence_id}/enrollments/by-tag", {"tag": "new"}, 200
    )
    assert by_tag == {"enrolled": 2, "already_enrolled": 1}
    for index in range(3):
        record = await campaigns.enrolment(sequence_id, number(index))
        assert record["state"] == "active"
    assert (await campaigns.enrolment(sequence_id, number(0)))["source"] == "csv"
    assert (await campaigns.enrolment(sequence_id, number(1)))["source"] == "tag"

    nobody = await campaigns.client.post(
        f"/api/v1/sequences/{sequence_id}/enrollments/by-tag", json={"tag": "nobody"}
    )
    assert nobody.status == 422
    assert (await nobody.json())["error"]["fields"][0]["field"] == "tag"
    for unreadable in ("\x00", "new\x00", "line\nbreak"):  # PostgreSQL holds no NUL
        control = await campaigns.client.post(
            f"/api/v1/sequences/{sequence_id}/enrollments/by-tag", json={"tag": unreadable}
        )
        assert control.status == 422, unreadable
        assert (await control.json())["error"]["fields"][0]["field"] == "tag"
    no_header = await campaigns.client.post(
        f"/api/v1/sequences/{sequence_id}/enrollments/import", data=b"name\nAnn\n"
    )
    assert no_header.status == 422


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([{"delay": "soon", "template": ORDER_UPDATE}], "steps.0.delay"),
        (
            [{"delay": "1h", "template": ORDER_UPDATE}, {"delay": "2x", "text": "hi"}],
            "steps.1.delay",
        ),
        ([{"delay": "1h", "template": {**ORDER_UPDATE, "name": "gone"}}], "steps.0.template"),
        ([{"delay": "1h", "template": {**ORDER_UPDATE, "params": []}}], "steps.0.template.params"),
        ([{"template": ORDER_UPDATE}], "steps.0"),
        ([{"delay": "1h"}], "steps.0"),
        ([], "steps"),
    ],
)
async def test_bad_sequences_are_a_422_naming_the_field_and_create_nothing(
    campaigns: Campaigns, steps: list[dict[str, Any]], field: str
) -> None:
    response = await campaigns.client.post(
        "/api/v1/sequences", json={"name": "Broken", "steps": steps}
    )
    assert response.status == 422, await response.text()
    fields = [f["field"] for f in (await response.json())["error"]["fields"]]
    assert field in fields
    assert (await campaigns.get("/api/v1/sequences"))["sequences"] == []


async def test_enrolling_an_unknown_contact_is_a_422_and_enrols_nobody(
    campaigns: Campaigns,
) -> None:
    sequence_id = await sequence(campaigns)
    response = await campaigns.client.post(
        f"/api/v1/sequences/{sequence_id}/enrollments", json={"wa_id": number(7)}
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["fields"][0]["field"] == "wa_id"
    assert (
        await campaigns.client.get(f"/api/v1/sequences/{sequence_id}/enrollments/{number(7)}")
    ).status == 404
    other = await campaigns.client.post(
        "/api/v1/sequences/no-such/enrollments", json={"wa_id": number(7)}
    )
    assert other.status == 404
    duplicate = await campaigns.client.post("/api/v1/sequences", json=THREE_STEPS)
    assert duplicate.status == 409


async def test_several_workers_never_fire_one_step_twice(
    campaigns: Campaigns, clock: FrozenClock
) -> None:
    from engine.campaigns.worker import CampaignConfig, CampaignWorker
    from engine.web.keys import SENDER

    await campaigns.import_contacts(20, tags="crowd")
    sequence_id = await sequence(
        campaigns, {"name": "Crowd", "steps": [{"delay": "1m", "template": ORDER_UPDATE}]}
    )
    await campaigns.post(
        f"/api/v1/sequences/{sequence_id}/enrollments/by-tag", {"tag": "crowd"}, 200
    )
    app = campaigns.outbound.app
    others = [
        CampaignWorker(app[STORE], clock, CampaignConfig(), on_queued=app[SENDER].wake)
        for _ in range(3)
    ]
    clock.advance(minutes=1)
    import asyncio

    await asyncio.gather(*(worker.run_once() for worker in others))
    campaigns.advance(seconds=1)

    async def all_sent() -> bool:
        return len(await campaigns.received()) >= 20

    await eventually(all_sent, what="every step to be sent")
    for index in range(20):
        record = await campaigns.enrolment(sequence_id, number(index))
        assert record["state"] == "completed"
    received = await campaigns.received()
    assert sorted(r["to"] for r in received) == [number(i) for i in range(20)]

"""The consent ledger handed over and a person erased, through the real server and a real
database: every change keeps its evidence, the export streams every event of every
contact, and an erased person's number comes back opted out."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from engine.whatsapp.signature import HEADER, sign
from tests.campaign_support import NEW_ARRIVALS, Campaigns, number, start_campaigns
from tests.conftest import FIXTURES
from tests.outbound_support import APP_SECRET, eventually

WEBHOOKS = FIXTURES / "webhooks"


def webhook(name: str, wa_id: str, wamid: str) -> bytes:
    data: dict[str, Any] = copy.deepcopy(json.loads((WEBHOOKS / f"{name}.json").read_text()))
    value = data["entry"][0]["changes"][0]["value"]
    for contact in value.get("contacts", []):
        contact["wa_id"] = wa_id
    for message in value.get("messages", []):
        message.update({"from": wa_id, "id": wamid})
    return json.dumps(data).encode()


async def post_webhook(campaigns: Campaigns, raw: bytes) -> None:
    response = await campaigns.client.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, APP_SECRET)},
    )
    assert response.status == 200, await response.text()


async def consent(campaigns: Campaigns, wa_id: str) -> list[dict[str, Any]]:
    response = await campaigns.client.get(f"/api/v1/contacts/{wa_id}/consent")
    assert response.status == 200
    return await response.json()  # type: ignore[no-any-return]


async def export(campaigns: Campaigns, **params: str) -> tuple[Any, str]:
    response = await campaigns.client.get("/api/v1/consent/export", params=params)
    return response, await response.text()


async def start(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    return await start_campaigns(aiohttp_client, tmp_path, clock)


async def test_each_change_keeps_its_evidence(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock)
    [ann] = await campaigns.import_contacts(1)
    await post_webhook(campaigns, webhook("text_stop_keyword", ann, "wamid.ann-stop"))

    async def ledger() -> list[dict[str, Any]]:
        return await consent(campaigns, ann)

    events = await eventually(lambda: _longer_than(ledger, 1), what="the STOP to reach the ledger")
    stop = events[-1]
    assert (stop["source"], stop["marketing_opt_in"]) == ("keyword", False)
    assert stop["evidence"]["message_id"] == "wamid.ann-stop"
    assert stop["evidence"]["text"] == "Stop!"  # the words as the customer wrote them

    response = await campaigns.client.patch(
        f"/api/v1/contacts/{ann}", json={"marketing_opt_in": True, "note": "asked by phone"}
    )
    assert response.status == 200
    api = (await ledger())[-1]
    assert (api["source"], api["note"]) == ("api", "asked by phone")
    assert api["evidence"]["request"] == f"PATCH /api/v1/contacts/{ann}"


async def _longer_than(read: Any, size: int) -> Any:
    found = await read()
    return found if len(found) > size else None


async def test_the_export_streams_every_event_of_every_contact(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock)
    count = 1500
    await campaigns.import_contacts(count)  # one event each: created opted in
    clock.advance(hours=1)
    await campaigns.import_contacts(count, opted_out=set(range(count)))  # and opted out

    response, text = await export(campaigns, format="jsonl")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    assert response.headers.get("Transfer-Encoding") == "chunked"  # streamed, not buffered
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 2 * count
    assert [r["event_id"] for r in records] == sorted(r["event_id"] for r in records)
    assert len({r["event_id"] for r in records}) == 2 * count
    # Replaying the ledger gives each contact's current opt-in.
    replayed: dict[str, bool] = {}
    for record in records:
        replayed[record["wa_id"]] = record["marketing_opt_in"]
    assert replayed == {number(i): False for i in range(count)}
    assert {r["source"] for r in records} == {"import"}

    response, text = await export(campaigns, format="csv", since="2026-03-02T09:30:00Z")
    assert response.status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == count
    assert {row["marketing_opt_in"] for row in rows} == {"false"}
    assert set(rows[0]) >= {"contact_id", "wa_id", "user_id", "source", "actor", "at", "evidence"}

    for bad in ({"format": "xml"}, {"since": "yesterday"}):
        response, text = await export(campaigns, **bad)
        assert response.status == 422, text
        assert next(iter(bad)) in text


async def test_an_erased_person_leaves_only_a_suppression_entry(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock)
    client = campaigns.client
    [ann, bob] = await campaigns.import_contacts(2, tags="vip")
    response = await client.patch(
        f"/api/v1/contacts/{ann}", json={"name": "Ann", "attributes": {"city": "Paris"}}
    )
    assert response.status == 200
    await post_webhook(campaigns, webhook("text", ann, "wamid.ann-hello"))
    sent = await campaigns.outbound.send(to=ann, template=NEW_ARRIVALS)
    await campaigns.outbound.wait_for(sent["id"], "sent", "delivered", "read")
    await post_webhook(campaigns, webhook("text_stop_keyword", ann, "wamid.ann-stop"))

    async def stopped() -> bool:
        found = await campaigns.get(f"/api/v1/contacts/{ann}")
        return found["marketing_opt_in"] is False

    await eventually(stopped, what="ann to opt out")
    [ann_id] = [
        c["id"] for c in (await campaigns.get("/api/v1/contacts"))["contacts"] if c["wa_id"] == ann
    ]

    assert (await client.delete(f"/api/v1/contacts/{ann}")).status == 422  # erase=true only
    assert (await client.delete(f"/api/v1/contacts/{ann}", params={"erase": "true"})).status == 204
    assert (await client.get(f"/api/v1/contacts/{ann}")).status == 404
    assert (await client.delete(f"/api/v1/contacts/{ann}", params={"erase": "true"})).status == 404
    unknown = await client.delete("/api/v1/contacts/16505559999", params={"erase": "true"})
    assert unknown.status == 404

    listed = (await campaigns.get("/api/v1/contacts"))["contacts"]
    assert [c["wa_id"] for c in listed] == [bob]
    _, text = await export(campaigns)
    records = [json.loads(line) for line in text.splitlines()]
    kept = [r for r in records if r["contact_id"] == ann_id]
    assert [r["marketing_opt_in"] for r in kept] == [True, False]  # values and times stay
    assert all(r["wa_id"] is None and r["evidence"] is None and r["note"] is None for r in kept)
    assert ann not in text
    assert "Paris" not in text
    message = await campaigns.outbound.message(sent["id"])
    assert message["text"] is None
    assert message["to"] != ann

    # The same number again, however it comes, starts opted out (source suppression).
    lines = "wa_id,marketing_opt_in\n" + f"{ann},yes\n"
    response = await client.post(
        "/api/v1/contacts/import", data=lines.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status == 200, await response.text()
    back = await campaigns.get(f"/api/v1/contacts/{ann}")
    assert back["marketing_opt_in"] is False
    [first] = await consent(campaigns, ann)
    assert (first["source"], first["actor"]) == ("suppression", "import")
    assert "Ann" not in json.dumps(back)

    # Through the API: a message to an erased number makes a contact who opted out.
    assert (await client.delete(f"/api/v1/contacts/{bob}", params={"erase": "true"})).status == 204
    again = await campaigns.outbound.send(to=bob, template=NEW_ARRIVALS)
    assert (again["status"], again["failure"]["code"]) == ("failed", "marketing_opt_out")
    [first] = await consent(campaigns, bob)
    assert (first["source"], first["marketing_opt_in"]) == ("suppression", False)

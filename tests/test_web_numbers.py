"""REST: business numbers registered, listed with their quality and limits, and chosen
by API messages, broadcasts and sequences; bad input is a 422 naming the field and
changes nothing; a number registered twice is a 409."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import SAMPLE_PHONE_NUMBER_ID

Client = TestClient[Any, Any]
B = "106540352242923"
TEMPLATE = {"name": "new_arrivals", "language": "en_US", "params": ["friend"]}


async def numbers(client: Client) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/numbers")
    assert answer.status == 200
    return (await answer.json())["numbers"]  # type: ignore[no-any-return]


async def test_the_configured_number_is_the_first_and_a_restart_changes_nothing(
    client: Client,
) -> None:
    listed = await numbers(client)
    assert [(n["phone_number_id"], n["display_phone_number"]) for n in listed] == [
        (SAMPLE_PHONE_NUMBER_ID, "15550783881")
    ]
    first = listed[0]
    assert (first["rate_limit"], first["effective_rate_limit"], first["quality_rating"]) == (
        None,
        80,
        "UNKNOWN",
    )
    assert (first["messaging_limit_tier"], first["daily_limit"], first["status"]) == (
        None,
        None,
        "connected",
    )


async def test_a_number_is_registered_once(client: Client) -> None:
    body = {"phone_number_id": B, "display_phone_number": "+1 555-078-3882", "rate_limit": 20}
    created = await client.post("/api/v1/numbers", json=body)
    assert created.status == 201, await created.text()
    number = await created.json()
    assert (number["phone_number_id"], number["rate_limit"], number["effective_rate_limit"]) == (
        B,
        20,
        20,
    )
    again = await client.post("/api/v1/numbers", json={**body, "rate_limit": 500})
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "number_exists"
    one = await (await client.get(f"/api/v1/numbers/{B}")).json()
    assert one["rate_limit"] == 20  # the second registration changed nothing
    assert [n["phone_number_id"] for n in await numbers(client)] == [SAMPLE_PHONE_NUMBER_ID, B]
    missing = await client.get("/api/v1/numbers/123")
    assert missing.status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_phone_number": "15550783882"}, "phone_number_id"),
        ({"phone_number_id": "abc", "display_phone_number": "15550783882"}, "phone_number_id"),
        ({"phone_number_id": B}, "display_phone_number"),
        ({"phone_number_id": B, "display_phone_number": "call us"}, "display_phone_number"),
        (
            {"phone_number_id": B, "display_phone_number": "15550783882", "rate_limit": 0},
            "rate_limit",
        ),
        (
            {"phone_number_id": B, "display_phone_number": "1555", "extra": 1},
            "display_phone_number",
        ),
    ],
)
async def test_bad_input_names_the_field_and_registers_nothing(
    client: Client, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/api/v1/numbers", json=body)
    assert answer.status == 422, await answer.text()
    fields = [f["field"] for f in (await answer.json())["error"]["fields"]]
    assert field in fields
    assert len(await numbers(client)) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/messages", {"to": "16505551234", "template": TEMPLATE}),
        ("/api/v1/broadcasts", {"name": "spring", "template": TEMPLATE, "tags": ["vip"]}),
        (
            "/api/v1/sequences",
            {"name": "welcome", "steps": [{"delay": "1h", "template": TEMPLATE}]},
        ),
    ],
)
async def test_a_number_not_registered_is_a_422_naming_it(
    client: Client, path: str, body: dict[str, Any]
) -> None:
    imported = await client.post(
        "/api/v1/contacts",
        json={"wa_id": "16505551234", "marketing_opt_in": True, "tags": ["vip"]},
    )
    assert imported.status == 201, await imported.text()
    answer = await client.post(path, json={**body, "phone_number_id": "424242"})
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    assert [f["field"] for f in error["fields"]] == ["phone_number_id"]
    assert "424242" in error["message"]
    # Registered, the same request is taken, and the choice is kept.
    registered = await client.post(
        "/api/v1/numbers", json={"phone_number_id": "424242", "display_phone_number": "15550000042"}
    )
    assert registered.status == 201
    taken = await client.post(path, json={**body, "phone_number_id": "424242"})
    assert taken.status in (201, 202), await taken.text()
    document = await taken.json()
    if path == "/api/v1/messages":
        detail = await (await client.get(f"/api/v1/messages/{document['id']}")).json()
        assert detail["phone_number_id"] == "424242"
    else:
        assert document["phone_number_id"] == "424242"


async def test_a_broadcast_without_a_number_keeps_the_default(client: Client) -> None:
    await client.post("/api/v1/contacts", json={"wa_id": "16505551234", "tags": ["vip"]})
    answer = await client.post(
        "/api/v1/broadcasts", json={"name": "spring", "template": TEMPLATE, "tags": ["vip"]}
    )
    assert answer.status == 201, await answer.text()
    assert (await answer.json())["phone_number_id"] == SAMPLE_PHONE_NUMBER_ID

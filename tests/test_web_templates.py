"""REST template catalogue, and the fixture catalogue loaded at start."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]

WELCOME = {
    "name": "welcome_offer",
    "language": "en_US",
    "category": "MARKETING",
    "body": "Welcome {{1}}! Here is {{2}} off your first order.",
    "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions", "payload": "STOP"}],
}


async def test_the_fixture_catalogue_has_every_category(client: Client) -> None:
    templates = (await (await client.get("/api/v1/templates")).json())["templates"]
    assert {t["category"] for t in templates} == {"MARKETING", "UTILITY", "AUTHENTICATION"}
    marketing = await (
        await client.get("/api/v1/templates", params={"category": "MARKETING"})
    ).json()
    assert marketing["templates"]
    assert all(t["category"] == "MARKETING" for t in marketing["templates"])


async def test_create_read_replace_delete(client: Client) -> None:
    created = await client.post("/api/v1/templates", json=WELCOME)
    assert created.status == 201
    again = await client.post("/api/v1/templates", json=WELCOME)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "template_exists"

    fetched = await (await client.get("/api/v1/templates/welcome_offer/en_US")).json()
    assert fetched["buttons"][0]["payload"] == "STOP"

    replaced = await client.put(
        "/api/v1/templates/welcome_offer/en_US", json={**WELCOME, "category": "UTILITY"}
    )
    assert replaced.status == 200
    fetched = await (await client.get("/api/v1/templates/welcome_offer/en_US")).json()
    assert fetched["category"] == "UTILITY"

    assert (await client.delete("/api/v1/templates/welcome_offer/en_US")).status == 204
    assert (await client.get("/api/v1/templates/welcome_offer/en_US")).status == 404


async def test_invalid_templates_name_the_field(client: Client) -> None:
    response = await client.post(
        "/api/v1/templates", json={**WELCOME, "category": "PROMO", "body": "Hi {{2}}"}
    )
    assert response.status == 422
    fields = {f["field"] for f in (await response.json())["error"]["fields"]}
    assert "category" in fields
    gap = await client.post("/api/v1/templates", json={**WELCOME, "body": "Hi {{2}}"})
    assert gap.status == 422
    assert "without gaps" in (await gap.json())["error"]["message"]
    mismatch = await client.put("/api/v1/templates/other/en_US", json=WELCOME)
    assert mismatch.status == 422
    assert (await client.get("/api/v1/templates/welcome_offer/en_US")).status == 404

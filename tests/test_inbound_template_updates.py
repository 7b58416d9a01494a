"""Template webhooks in Meta's sample shapes, posted to the real ``POST /webhook``: the
catalogue follows at once and ``GET /api/v1/templates/{name}/{language}`` shows it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import FIXTURES

Client = TestClient[Any, Any]
META_ID = "806312974732579"  # Meta's id of the template, learned from its webhooks


async def post_sample(client: Client, sample: str, **replace: str) -> None:
    raw = (FIXTURES / "webhooks" / f"{sample}.json").read_text()
    for old, new in replace.items():
        raw = raw.replace(old, new)
    response = await client.post(
        "/webhook", data=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 200, await response.text()


async def template(client: Client, name: str = "order_update") -> dict[str, Any]:
    response = await client.get(f"/api/v1/templates/{name}/en_US")
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("template_status_paused", {"status": "PAUSED", "category": "UTILITY", "id": META_ID}),
        ("template_status_disabled", {"status": "DISABLED", "id": META_ID}),
        ("template_quality_update", {"quality_score": "YELLOW", "id": META_ID}),
        ("template_category_update", {"category": "MARKETING", "status": "APPROVED"}),
        # A notice that the category will change in 24 hours changes nothing yet.
        ("template_category_impending", {"category": "UTILITY", "id": None}),
    ],
)
async def test_a_template_webhook_updates_the_catalogue_at_once(
    client: Client, sample: str, expected: dict[str, Any]
) -> None:
    before = await template(client)
    assert (before["status"], before["known"], before["id"]) == ("APPROVED", True, None)
    await post_sample(client, sample)
    after = await template(client)
    assert {key: after[key] for key in expected} == expected
    assert after["body"] == before["body"]


async def test_paused_then_reinstated(client: Client) -> None:
    await post_sample(client, "template_status_paused")
    assert (await template(client))["status"] == "PAUSED"
    await post_sample(client, "template_status_reinstated")
    assert (await template(client))["status"] == "APPROVED"
    # Known by its id from now on, whatever name the webhook gives.
    await post_sample(client, "template_quality_update", order_update="renamed_template")
    assert (await template(client))["quality_score"] == "YELLOW"


async def test_a_webhook_about_a_template_we_do_not_know_keeps_it_as_unknown(
    client: Client,
) -> None:
    assert (await client.get("/api/v1/templates/winter_sale/en_US")).status == 404
    await post_sample(
        client,
        "template_status_paused",
        order_update="winter_sale",
        **{"806312974732579": "111111111111111"},
    )
    await post_sample(
        client,
        "template_quality_update",
        order_update="winter_sale",
        **{"806312974732579": "111111111111111"},
    )
    unknown = await template(client, "winter_sale")
    assert unknown == {
        "name": "winter_sale",
        "language": "en_US",
        "known": False,
        "id": "111111111111111",
        "status": "PAUSED",
        "category": None,
        "quality_score": "YELLOW",
        "waiting_messages": 0,
    }
    # It cannot be sent: its content is not known.
    refused = await client.post(
        "/api/v1/messages",
        json={"to": "16505551234", "template": {"name": "winter_sale", "language": "en_US"}},
    )
    assert refused.status == 422


async def test_a_category_we_do_not_know_is_logged_and_ignored(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await post_sample(client, "template_category_update", **{'"MARKETING"': '"PROMOTIONAL"'})
    assert (await template(client))["category"] == "UTILITY"
    assert any("PROMOTIONAL" in record.getMessage() for record in caplog.records)

"""MARKETING templates through the Marketing Messages API (``WA_MARKETING_MESSAGES_API``),
with the fallback to ``/messages`` for a business Meta has not onboarded, and a
template's time-to-live passed on. Against the built-in simulator."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from tests.campaign_support import ORDER_UPDATE, SPRING_SALE, Campaigns, number, start_campaigns
from tests.conftest import FIXTURES
from tests.outbound_support import eventually

DELIVERED = ("delivered", "read")


async def start(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, **more: Any) -> Campaigns:
    catalogue = tmp_path / "templates.yaml"
    shutil.copy(FIXTURES / "templates.yaml", catalogue)
    # A time-to-live on the marketing template, as WhatsApp Manager lets one set it.
    text = catalogue.read_text().replace(
        "  footer: Reply STOP to opt out\n",
        "  footer: Reply STOP to opt out\n  message_send_ttl_seconds: 43200\n",
        1,
    )
    catalogue.write_text(text)
    campaigns = await start_campaigns(
        aiohttp_client, tmp_path, clock, TEMPLATES_FILE=catalogue, **more
    )
    await campaigns.import_contacts(2)
    return campaigns


async def send(campaigns: Campaigns, to: str, template: dict[str, Any]) -> dict[str, Any]:
    sent = await campaigns.post("/api/v1/messages", {"to": to, "template": template}, 202)
    return await campaigns.outbound.wait_for(sent["id"], *DELIVERED)


async def test_marketing_templates_go_through_the_marketing_messages_api(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock, WA_MARKETING_MESSAGES_API=True)
    await send(campaigns, number(0), SPRING_SALE)
    await send(campaigns, number(1), ORDER_UPDATE)
    [marketing] = await campaigns.received(number(0))
    [utility] = await campaigns.received(number(1))
    assert (marketing["endpoint"], utility["endpoint"]) == ("marketing_messages", "messages")
    assert marketing["body"]["message_send_ttl_seconds"] == 43200
    assert "message_send_ttl_seconds" not in utility["body"]


async def test_without_the_setting_everything_goes_through_messages(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock)
    await send(campaigns, number(0), SPRING_SALE)
    [received] = await campaigns.received(number(0))
    assert received["endpoint"] == "messages"
    assert received["body"]["message_send_ttl_seconds"] == 43200


async def test_a_business_not_onboarded_sends_through_messages_and_says_so(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, caplog: Any
) -> None:
    campaigns = await start(aiohttp_client, tmp_path, clock, WA_MARKETING_MESSAGES_API=True)
    response = await campaigns.client.put(
        "/simulator/marketing-messages", json={"onboarded": False}
    )
    assert response.status == 200
    delivered = await send(campaigns, number(0), SPRING_SALE)
    refused, went = await campaigns.received(number(0))
    assert (refused["endpoint"], went["endpoint"]) == ("marketing_messages", "messages")
    assert refused["error"]["code"] == 10
    assert went["wamid"] == delivered["wamid"]

    async def noticed() -> list[dict[str, Any]] | None:
        # Meta's delivered may be stored before the sender records its own outcome.
        found = await campaigns.get(f"/api/v1/messages/{delivered['id']}")
        entries = [
            h
            for h in found["history"]
            if h["status"] == "sent" and "notice" in (h["details"] or {})
        ]
        return entries or None

    [sent] = await eventually(noticed, what="the sent entry with its notice")
    assert sent["details"]["notice"] == "marketing_messages_not_onboarded"
    assert delivered["attempts"] == 1
    assert any(
        "not onboarded to the Marketing Messages API" in record.getMessage()
        for record in caplog.records
    )

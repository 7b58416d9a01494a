"""Broadcasts end to end: the real server plans them into the outbox, the sender sends them
to the built-in simulator, and statuses come back through the signed webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from tests.campaign_support import SPRING_SALE, Campaigns, number, start_campaigns


@pytest.fixture
async def campaigns(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock) -> Campaigns:
    return await start_campaigns(aiohttp_client, tmp_path, clock)


async def test_the_spec_example_990_sent_and_10_opted_out_skipped(campaigns: Campaigns) -> None:
    opted_out = set(range(0, 1000, 100))
    await campaigns.import_contacts(1000, opted_out=opted_out, tags="spring")

    created = await campaigns.post(
        "/api/v1/broadcasts",
        {"name": "Spring sale", "template": SPRING_SALE, "tags": ["spring"]},
        201,
    )
    assert (created["total"], created["will_send"], created["excluded_opted_out"]) == (
        1000,
        990,
        10,
    )
    assert created["warnings"] == []

    done = await campaigns.wait_for_broadcast(created["id"], "completed")
    counts = done["counts"]
    assert counts["skipped"] == 10
    assert counts["sent"] + counts["delivered"] + counts["read"] == 990
    assert counts["queued"] == counts["sending"] == counts["failed"] == 0

    received = await campaigns.received()
    assert len(received) == 990
    assert {r["to"] for r in received}.isdisjoint({number(i) for i in opted_out})

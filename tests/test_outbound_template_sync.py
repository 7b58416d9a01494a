"""The template catalogue synced from Meta (here the built-in simulator, which lists the
templates file as Meta lists an account's templates, page by page): at start, every
``TEMPLATE_SYNC_MINUTES``, and on ``POST /api/v1/templates/sync``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from engine.devtools.simulated_templates import template_id
from engine.models.template import Template, TemplateCategory
from tests.conftest import FIXTURES
from tests.outbound_support import Outbound, eventually, start_outbound

WABA_ID = "102290129340398"
EXTRA = """
- name: winter_sale
  language: en_US
  category: MARKETING
  body: "Winter sale, {{1}}: everything must go."
"""


async def start(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, **more: Any) -> Outbound:
    catalogue = tmp_path / "templates.yaml"
    shutil.copy(FIXTURES / "templates.yaml", catalogue)
    return await start_outbound(
        aiohttp_client,
        tmp_path,
        clock,
        WA_WABA_ID=WABA_ID,
        TEMPLATES_FILE=catalogue,
        **more,
    )


async def catalogue_entry(outbound: Outbound, name: str) -> dict[str, Any] | None:
    response = await outbound.client.get(f"/api/v1/templates/{name}/en_US")
    if response.status != 200:
        return None
    found: dict[str, Any] = await response.json()
    return found


def order_update_id() -> str:
    return template_id(
        Template(name="order_update", language="en_US", category=TemplateCategory.UTILITY, body="x")
    )


async def test_the_catalogue_is_synced_at_start_and_on_request(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start(aiohttp_client, tmp_path, clock)

    async def synced() -> bool:
        entry = await catalogue_entry(outbound, "order_update")
        return entry is not None and entry["id"] == order_update_id()

    await eventually(synced, what="the sync at start to give the templates Meta's ids")
    synced_entry = await catalogue_entry(outbound, "order_update")
    assert synced_entry is not None
    assert [c["type"] for c in synced_entry["components"]] == ["BODY"]

    # At Meta: a new template, and one recategorised (no webhook reaches us here).
    catalogue = tmp_path / "templates.yaml"
    text = catalogue.read_text().replace(
        "- name: order_update\n  language: en_US\n  category: UTILITY",
        "- name: order_update\n  language: en_US\n  category: MARKETING",
    )
    catalogue.write_text(text + EXTRA)
    response = await outbound.client.post("/api/v1/templates/sync")
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["added"] == ["winter_sale/en_US"]
    assert report["changed"] == [
        {"template": "order_update/en_US", "changes": {"category": ["UTILITY", "MARKETING"]}}
    ]
    assert report["skipped"] == []
    assert report["missing"] == []
    assert report["unchanged"] == len(text.split("- name:")) - 2
    winter = await catalogue_entry(outbound, "winter_sale")
    assert winter is not None
    assert winter["status"] == "APPROVED"
    order = await catalogue_entry(outbound, "order_update")
    assert order is not None
    assert order["category"] == "MARKETING"

    again = await (await outbound.client.post("/api/v1/templates/sync")).json()
    assert (again["added"], again["changed"]) == ([], [])


async def test_the_catalogue_is_synced_every_interval(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start(aiohttp_client, tmp_path, clock, TEMPLATE_SYNC_MINUTES=0.005)
    catalogue = tmp_path / "templates.yaml"
    catalogue.write_text(catalogue.read_text() + EXTRA)

    async def added() -> dict[str, Any] | None:
        return await catalogue_entry(outbound, "winter_sale")

    await eventually(added, what="a later sync to bring the new template")


async def test_a_graph_error_leaves_the_catalogue_as_it_was(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    outbound = await start(aiohttp_client, tmp_path, clock)

    async def synced() -> bool:
        entry = await catalogue_entry(outbound, "order_update")
        return entry is not None and entry["id"] is not None

    await eventually(synced, what="the first sync")
    failed_before = await failed_syncs(outbound)
    before = await (await outbound.client.get("/api/v1/templates")).json()
    (tmp_path / "templates.yaml").write_text("- name: [unreadable\n")  # Meta answers an error
    response = await outbound.client.post("/api/v1/templates/sync")
    assert response.status == 502
    assert (await response.json())["error"]["code"] == "graph_error"
    assert await (await outbound.client.get("/api/v1/templates")).json() == before
    assert await failed_syncs(outbound) == failed_before + 1


async def failed_syncs(outbound: Outbound) -> float:
    """Failed syncs so far (one may be the sync at start, tried before the server
    listened)."""
    metrics = await (await outbound.client.get("/metrics")).text()
    prefix = 'optinflow_template_syncs_total{result="failed"} '
    return sum(
        float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix)
    )


async def test_without_an_account_there_is_no_sync(client: Any) -> None:
    response = await client.post("/api/v1/templates/sync")
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "template_sync_off"

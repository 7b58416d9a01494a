"""Operations endpoints."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def test_healthz_answers_when_the_store_does(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz", headers={"Authorization": ""})
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_metrics_are_prometheus_text_and_count_requests(client: TestClient[Any, Any]) -> None:
    await client.get("/api/v1/contacts/16505551234")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    labels = 'method="GET",route="/api/v1/contacts/{contact}",status="404"'
    assert f"optinflow_http_requests_total{{{labels}}} 1.0" in text

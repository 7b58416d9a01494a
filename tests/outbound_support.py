"""Test harness for the outbound pipeline: the real server with its built-in simulator on
loopback, and small receivers standing where Meta's webhook and an integration would be.

The simulator's status notifications reach the server's own ``POST /webhook``, signed
with the app secret, so every status goes the way Meta's do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Store, Tx

APP_SECRET = "simulated-app-secret"
DEADLINE_SECONDS = 10.0


async def eventually(
    check: Callable[[], Awaitable[Any]], *, what: str, within: float = DEADLINE_SECONDS
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last saw {result!r}")
        await asyncio.sleep(0.01)


@dataclass
class Outbound:
    """The running server with its built-in simulator, whose status webhooks go to the
    server's own ``POST /webhook``, signed, as Meta's do."""

    client: TestClient[Any, Any]
    app: web.Application
    clock: FrozenClock

    async def send(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/api/v1/messages", json=body)
        assert response.status == 202, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    async def message(self, message_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/messages/{message_id}")
        assert response.status == 200, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    async def wait_for(self, message_id: str, *statuses: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            message = await self.message(message_id)
            return message if message["status"] in statuses else None

        return await eventually(reached, what=f"message {message_id} to be {statuses}")  # type: ignore[no-any-return]

    async def received(self, to: str | None = None) -> list[dict[str, Any]]:
        response = await self.client.get("/simulator/messages", params={"to": to} if to else {})
        assert response.status == 200
        return (await response.json())["messages"]  # type: ignore[no-any-return]

    async def fail(self, to: str, code: int | str, **rule: Any) -> None:
        response = await self.client.post(
            "/simulator/failures", json={"to": to, "code": code, **rule}
        )
        assert response.status == 201, await response.text()

    def advance(self, seconds: float) -> None:
        """Move time on and tell the sender (it would notice at its next poll anyway)."""
        from engine.web.keys import CALLBACKS, SENDER

        self.clock.advance(seconds=seconds)
        self.app[SENDER].wake()
        self.app[CALLBACKS].wake()


async def start_outbound(
    aiohttp_client: Any,
    tmp_path: Any,
    clock: FrozenClock,
    **overrides: Any,
) -> Outbound:
    """The real application with its simulator, serving on a known loopback port so the
    simulator can post status notifications to the application's own webhook."""
    from tests.conftest import AUTH, make_app, make_settings

    port = free_port()
    values: dict[str, Any] = {
        "PORT": port,
        "WA_APP_SECRET": APP_SECRET,
        "SIMULATOR_STATUS_DELAY_SECONDS": 0,
        "OUTBOUND_POLL_SECONDS": 0.02,
        "OUTBOUND_WORKER": True,
    }
    values.update(overrides)
    app = make_app(make_settings(tmp_path, **values), clock=clock)
    client = await aiohttp_client(app, headers=AUTH, server_kwargs={"port": port})
    return Outbound(client, app, clock)


async def enqueue_all(
    store: Store, clock: FrozenClock, requests: list[OutboundRequest]
) -> list[str]:
    async def job(tx: Tx) -> list[str]:
        ids = []
        for request in requests:
            enqueued = await enqueue(tx, request, now=clock.now())
            assert enqueued.message is not None
            ids.append(enqueued.message.id)
        return ids

    return await store.write(job)

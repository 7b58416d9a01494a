"""Test harness for the outbound pipeline: the real server with its built-in simulator on
loopback, and small receivers standing where Meta's webhook and an integration would be.

``StatusReceiver`` plays our ``POST /webhook`` for status notifications (the real route
is built on the inbound branch): it checks the signature the simulator puts on every
notification and applies each status with ``tx.messages.change_status``, finding the
message by wamid or, failing that, by ``biz_opaque_callback_data``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from engine.clock import FrozenClock
from engine.models.message import MessageStatus
from engine.outbound.recovery import message_for_status
from engine.store import Store, Tx
from engine.whatsapp.errors import failure_from_status_error
from engine.whatsapp.signature import HEADER, verify

APP_SECRET = "simulated-app-secret"
DEADLINE_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
class StatusReceiver:
    secret: str = APP_SECRET
    store: Store | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhook", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(raw, request.headers.get(HEADER), self.secret):
            self.bad_signatures += 1
            return web.Response(status=401)
        document = json.loads(raw)
        self.notifications.append(document)
        await self.apply(document)
        return web.Response(text="ok")

    async def apply(self, document: dict[str, Any]) -> None:
        assert self.store is not None, "the receiver needs the server's store"
        for entry in document["entry"]:
            for change in entry["changes"]:
                for status in change["value"].get("statuses", []):
                    await self.store.write(_status_job(status))

    def statuses(self) -> list[dict[str, Any]]:
        return [
            status
            for document in self.notifications
            for entry in document["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]


def _status_job(status: dict[str, Any]) -> Callable[[Tx], Awaitable[None]]:
    at = datetime.fromtimestamp(int(status["timestamp"]), UTC)
    errors = status.get("errors") or []
    failure = failure_from_status_error(errors[0]) if errors else None

    async def job(tx: Tx) -> None:
        message = await message_for_status(
            tx, status["id"], status.get("biz_opaque_callback_data"), at=at
        )
        if message is not None:
            await tx.messages.change_status(
                message.id,
                MessageStatus(status["status"]),
                at=at,
                failure=failure,
                wamid=status["id"],
            )

    return job


@dataclass
class Outbound:
    """The running server (with its simulator) and the receiver of its status webhooks."""

    client: TestClient[Any, Any]
    app: web.Application
    receiver: StatusReceiver
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
    aiohttp_server: Any,
    tmp_path: Any,
    clock: FrozenClock,
    **overrides: Any,
) -> Outbound:
    """The real application with its simulator on a loopback port, statuses to a receiver."""
    from engine.web.app import create_app
    from engine.web.keys import STORE
    from tests.conftest import AUTH, make_settings

    receiver = StatusReceiver()
    server = await aiohttp_server(receiver.make_app())
    receiver.url = str(server.make_url("/webhook"))
    port = free_port()
    values: dict[str, Any] = {
        "PORT": port,
        "WA_APP_SECRET": APP_SECRET,
        "SIMULATOR_WEBHOOK_URL": receiver.url,
        "SIMULATOR_STATUS_DELAY_SECONDS": 0,
        "OUTBOUND_POLL_SECONDS": 0.02,
    }
    values.update(overrides)
    app = create_app(make_settings(tmp_path, **values), clock=clock)
    client = await aiohttp_client(app, headers=AUTH, server_kwargs={"port": port})
    receiver.store = app[STORE]
    return Outbound(client, app, receiver, clock)

"""Integration callbacks: post each status change of an API message to its callback URL.

The store queues a delivery in the same transaction as every status change of a message
that has a callback URL (see :mod:`engine.store.callbacks`); this dispatcher drains
them. Each delivery is a ``POST`` of JSON::

    {"id": "<message id>", "to": "16505551234", "status": "delivered",
     "at": "2026-03-02T09:00:01Z", "failure": null, "wamid": "wamid.HBgL..."}

with ``X-Optinflow-Signature: sha256=<hex>`` (HMAC-SHA256 of the raw body with the
callback secret, the same scheme as Meta's webhooks) and ``X-Optinflow-Delivery: <id>``
(the same on every retry, so receivers can drop duplicates). A 2xx answer delivers it;
anything else is retried with exponential backoff, up to ``max_tries``. Deliveries of one
message arrive in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from engine.clock import Clock
from engine.outbound.metrics import OutboundMetrics
from engine.store import Store, Tx
from engine.store.announcements import Topic
from engine.store.callbacks import CallbackDelivery, CallbackOutcome
from engine.whatsapp.signature import sign

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Optinflow-Signature"
DELIVERY_HEADER = "X-Optinflow-Delivery"


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    secret: str
    max_tries: int = 10
    backoff: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(hours=1)
    timeout_seconds: float = 10.0
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 0.5
    batch: int = 50


def callback_body(delivery: CallbackDelivery) -> bytes:
    document: dict[str, Any] = {
        "id": delivery.message_id,
        "to": delivery.to,
        "status": delivery.status.value,
        "at": delivery.at.isoformat().replace("+00:00", "Z"),
        "failure": delivery.failure.model_dump() if delivery.failure else None,
        "wamid": delivery.wamid,
    }
    return json.dumps(document, separators=(",", ":")).encode()


class CallbackDispatcher:
    def __init__(
        self,
        store: Store,
        session: aiohttp.ClientSession,
        clock: Clock,
        config: CallbackConfig,
        *,
        metrics: OutboundMetrics | None = None,
    ) -> None:
        self._store = store
        self._session = session
        self._clock = clock
        self._config = config
        self._metrics = metrics or OutboundMetrics()
        self._wake = store.subscribe(Topic.CALLBACKS)  # announced by whoever makes work
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name="callback-dispatcher")
        return self.task

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.task is not None:
            await self.task

    async def run(self) -> None:
        while not self._stopping:
            try:
                handled = await self.deliver_due()
            except Exception:
                log.exception("delivering integration callbacks failed")
                handled = 0
            if handled:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.poll_seconds)
            self._wake.clear()  # before the look: an announcement during it is kept

    async def deliver_due(self) -> int:
        """Post the deliveries that are due now; how many were attempted."""
        now = self._clock.now()
        lease_until = now + self._config.lease
        batch = await self._store.write(
            lambda tx: tx.callbacks.claim(
                now=now, lease_until=lease_until, limit=self._config.batch
            )
        )
        if not batch:
            return 0
        outcomes = await asyncio.gather(*(self._post(delivery) for delivery in batch))
        await self._store.write(lambda tx: tx.callbacks.record(outcomes, now=self._clock.now()))
        return len(batch)

    async def _post(self, delivery: CallbackDelivery) -> CallbackOutcome:
        body = callback_body(delivery)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self._config.secret),
            DELIVERY_HEADER: str(delivery.id),
        }
        try:
            async with self._session.post(
                delivery.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._config.timeout_seconds),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    self._metrics.callbacks.labels("delivered").inc()
                    return CallbackOutcome(delivery.id, delivered=True)
                error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as problem:
            error = f"{type(problem).__name__}: {problem}"
        return self._retry_or_abandon(delivery, error)

    def _retry_or_abandon(self, delivery: CallbackDelivery, error: str) -> CallbackOutcome:
        if delivery.attempts >= self._config.max_tries:
            self._metrics.callbacks.labels("abandoned").inc()
            log.warning(
                "abandoned callback %d to %s after %d tries: %s",
                delivery.id,
                delivery.url,
                delivery.attempts,
                error,
            )
            return CallbackOutcome(delivery.id, delivered=False, error=error)
        self._metrics.callbacks.labels("retried").inc()
        delay = min(self._config.backoff * (2 ** (delivery.attempts - 1)), self._config.backoff_max)
        retry_at: datetime = self._clock.now() + delay
        return CallbackOutcome(delivery.id, delivered=False, error=error, retry_at=retry_at)


SECRET_SETTING = "callback_secret"


async def ensure_callback_secret(store: Store, configured: str | None) -> str:
    """The secret that signs callbacks: ``CALLBACK_SECRET``, else one made and kept at
    first start (``GET /api/v1/callbacks/secret`` shows it to API clients)."""
    if configured:
        return configured
    async with store.read() as tx:
        stored = await tx.settings.get(SECRET_SETTING)
    if stored is not None:
        return stored
    made = secrets.token_urlsafe(32)

    async def keep(tx: Tx) -> str:
        existing = await tx.settings.get(SECRET_SETTING)
        if existing is not None:
            return existing
        await tx.settings.put(SECRET_SETTING, made)
        return made

    return await store.write(keep)

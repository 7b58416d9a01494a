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

The dispatcher works in rounds (:func:`engine.background.keep_running`): a round that
fails (the database locked or away) is logged and tried again with a backoff. A stop
waits up to ``stop_grace`` seconds for the posts in flight; those still unanswered are
recorded as tries to repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from engine.background import Health, keep_running
from engine.clock import Clock
from engine.ids import new_id
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
    stop_grace: float = 8.0
    """How long a stop waits for the posts in flight."""


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
        health: Health | None = None,
        owner: str | None = None,
    ) -> None:
        # Whose leases these are: a lapsed lease taken over by another worker is no longer
        # this one's to record.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-12:]}"
        self._store = store
        self._session = session
        self._clock = clock
        self._config = config
        self._metrics = metrics or OutboundMetrics()
        self._wake = store.subscribe(Topic.CALLBACKS)  # announced by whoever makes work
        self._stopping = False
        self._cut = asyncio.Event()  # the stop's grace is over: give up the posts in flight
        health = health or Health()
        # A round waits for its posts: up to their timeout.
        stall_after = max(
            health.stall_seconds, 2 * config.timeout_seconds, 10 * config.poll_seconds
        )
        self._beat = health.heartbeat("callbacks", stall_after=stall_after)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name="callback-dispatcher")
        return self.task

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop after the round under way; posts still in flight after ``stop_grace``
        are given up and recorded as tries to repeat."""
        self._stopping = True
        self._beat.stop()
        self._wake.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), self._config.stop_grace)
        except TimeoutError:
            self._cut.set()
            await self.task

    async def run(self) -> None:
        await keep_running(self._beat, self._round)

    async def _round(self) -> None:
        if await self.deliver_due() or self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._config.poll_seconds)
        self._wake.clear()  # before the look: an announcement during it is kept

    async def deliver_due(self) -> int:
        """Post the deliveries that are due now; how many were attempted."""
        now = self._clock.now()
        lease_until = now + self._config.lease
        owner = self.owner
        batch = await self._store.write(
            lambda tx: tx.callbacks.claim(
                owner, now=now, lease_until=lease_until, limit=self._config.batch
            )
        )
        if not batch:
            return 0
        outcomes = await asyncio.gather(*(self._post(delivery) for delivery in batch))
        await self._store.write(
            lambda tx: tx.callbacks.record(owner, outcomes, now=self._clock.now())
        )
        return len(batch)

    async def _post(self, delivery: CallbackDelivery) -> CallbackOutcome:
        """Post, unless the stop's grace runs out first: then a try to repeat."""
        posting = asyncio.ensure_future(self._attempt(delivery))
        cut = asyncio.ensure_future(self._cut.wait())
        try:
            await asyncio.wait({posting, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()
            if not posting.done():
                posting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await posting
        if posting.cancelled():
            error = "the server stopped during the delivery"
            return CallbackOutcome(
                delivery.id, delivered=False, error=error, retry_at=self._clock.now()
            )
        return posting.result()

    async def _attempt(self, delivery: CallbackDelivery) -> CallbackOutcome:
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

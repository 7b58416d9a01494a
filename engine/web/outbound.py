"""The outbound pipeline's lifetime in the server: the Cloud API client (Meta's, or the
built-in simulator when no access token is set), the sender and the callback dispatcher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from aiohttp import web

from engine.config import Settings
from engine.outbound.callbacks import CallbackConfig, CallbackDispatcher, ensure_callback_secret
from engine.outbound.metrics import OutboundMetrics
from engine.outbound.sender import Sender, SenderConfig
from engine.web.keys import CALLBACK_SECRET, CALLBACKS, CLOCK, METRICS, SENDER, SETTINGS, STORE
from engine.whatsapp.client import CloudApiClient
from engine.whatsapp.simulator import SIMULATOR, Simulator

SIMULATOR_TOKEN = "simulator-access-token"


def sender_config(settings: Settings) -> SenderConfig:
    return SenderConfig(
        default_phone_number_id=settings.wa_phone_number_id,
        rate_limit=settings.outbound_rate_limit,
        rate_limits=dict(settings.outbound_rate_limits),
        max_tries=settings.outbound_max_tries,
        backoff=timedelta(seconds=settings.outbound_backoff_seconds),
        backoff_max=timedelta(seconds=settings.outbound_backoff_max_seconds),
        concurrency=settings.outbound_concurrency,
        lease=timedelta(seconds=settings.outbound_lease_seconds),
        poll_seconds=settings.outbound_poll_seconds,
        pair_interval=timedelta(seconds=settings.outbound_pair_interval_seconds),
        pair_burst=settings.outbound_pair_burst,
    )


async def outbound_lifetime(app: web.Application) -> AsyncIterator[None]:
    settings, store, clock = app[SETTINGS], app[STORE], app[CLOCK]
    metrics = OutboundMetrics(app[METRICS].registry)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.outbound_concurrency)
    )
    simulator: Simulator | None = None
    if settings.simulator_enabled:
        simulator = Simulator(
            store=store,
            clock=clock,
            phone_number_id=settings.wa_phone_number_id,
            webhook_url=settings.simulator_webhook_url or settings.base_url + "/webhook",
            app_secret=settings.wa_app_secret,
            status_delay_seconds=settings.simulator_status_delay_seconds,
        )
        await simulator.start()
        app[SIMULATOR] = simulator
    client = CloudApiClient(
        session,
        graph_base=settings.graph_base,
        api_version=settings.wa_api_version,
        access_token=settings.wa_access_token or SIMULATOR_TOKEN,
        timeout_seconds=settings.outbound_http_timeout_seconds,
    )
    secret = await ensure_callback_secret(store, settings.callback_secret)
    app[CALLBACK_SECRET] = secret
    sender = Sender(store, client, clock, sender_config(settings), metrics=metrics)
    dispatcher = CallbackDispatcher(
        store,
        session,
        clock,
        CallbackConfig(secret=secret, max_tries=settings.callback_max_tries),
        metrics=metrics,
    )
    app[SENDER] = sender
    app[CALLBACKS] = dispatcher
    if settings.outbound_worker:
        sender.start()
        dispatcher.start()
    try:
        yield
    finally:
        if settings.outbound_worker:
            await sender.stop()
            await dispatcher.stop()
        if simulator is not None:
            await simulator.close()
        await session.close()

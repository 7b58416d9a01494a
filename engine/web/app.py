"""The application factory: state, lifetimes and routes, wired in one place."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from engine.catalogue import load_templates
from engine.clock import Clock, SystemClock
from engine.config import Settings
from engine.metrics import Metrics
from engine.store import Tx, open_store
from engine.web import (
    agents,
    broadcasts,
    contacts,
    conversations,
    flows,
    health,
    messages,
    sequences,
    templates,
    webhook,
)
from engine.web.auth import api_auth_middleware, ensure_api_token
from engine.web.campaigns import campaigns_lifetime
from engine.web.console import console_middleware, setup_console
from engine.web.errors import error_middleware
from engine.web.keys import API_TOKEN_HASH, CLOCK, METRICS, SETTINGS, STORE
from engine.web.outbound import outbound_lifetime
from engine.whatsapp import simulator

log = logging.getLogger(__name__)

YOUNG_GC_THRESHOLD = 10_000  # Python's default is 700 allocations
GENERATED_API_TOKEN = web.AppKey("generated_api_token", str)
"""Set when this start made the API token, so the launcher can show it once."""


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(
        middlewares=[
            health.metrics_middleware,
            error_middleware,
            api_auth_middleware,
            console_middleware,  # agents' console sessions and CSRF
        ]
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    # Lifetimes start in this order and stop in the reverse one. The sender (and the
    # built-in Cloud API simulator when no access token is configured) and the bot need
    # the store and its template catalogue; the inbound dispatcher needs the bot, since
    # on start it hands over what a crash left unhandled. On the way out the dispatcher
    # stops first and the store closes last.
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(outbound_lifetime)
    app.cleanup_ctx.append(campaigns_lifetime)  # after the sender, which it wakes
    app.cleanup_ctx.append(flows.bot_lifetime)
    app.cleanup_ctx.append(webhook.inbound_lifetime)
    routes = (
        *(health, webhook, contacts, templates, messages, flows, agents, conversations),
        *(broadcasts, sequences),
    )
    for module in routes:
        app.add_routes(module.routes)
    if settings.simulator_enabled:
        app.add_routes(simulator.routes)
    setup_console(app)
    app.on_startup.append(_settle_garbage_collector)  # after every lifetime has started
    return app


async def _settle_garbage_collector(app: web.Application) -> None:
    """What start-up made (modules, schemas, templates, flows) lives as long as the
    server: move it out of the collector's sight, so that a full collection under load
    looks only at what requests made; and collect young objects less often, since each
    webhook makes a few hundred of them."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await open_store(
        settings.database_url,
        clock=app[CLOCK],
        pool_size=settings.database_pool_size,
        acquire_timeout=settings.database_acquire_timeout_seconds,
    )
    app[STORE] = store
    try:
        digest, generated = await ensure_api_token(store, settings.api_token)
        app[API_TOKEN_HASH] = digest
        if generated is not None:
            app[GENERATED_API_TOKEN] = generated
        if settings.templates_file is not None and settings.templates_file.exists():
            catalogue = load_templates(settings.templates_file)

            async def put_all(tx: Tx) -> None:
                for template in catalogue:
                    await tx.templates.put(template)

            await store.write(put_all)
            log.info("loaded %d templates from %s", len(catalogue), settings.templates_file)
        yield
    finally:
        await store.close()

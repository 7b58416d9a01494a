"""The web application: routes and middlewares over the parts the composition root built."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from engine.clock import Clock, SystemClock
from engine.composition import Background, assemble
from engine.config import Settings
from engine.devtools import simulator
from engine.devtools.simulator import SIMULATOR, SIMULATOR_CONTROL, ControlAccess
from engine.inbound.handoff import ConversationHandler
from engine.metrics import Metrics
from engine.web import (
    agents,
    broadcasts,
    consent,
    contacts,
    conversations,
    desk_work,
    flows,
    health,
    messages,
    numbers,
    sequences,
    templates,
    webhook,
)
from engine.web.api_token import ApiTokenCheck
from engine.web.auth import api_auth_middleware
from engine.web.console import console_middleware, setup_console
from engine.web.error_answers import error_middleware
from engine.web.keys import (
    API_TOKEN_CHECK,
    BOT_HANDLER,
    CALLBACK_SECRET,
    CALLBACKS,
    CAMPAIGNS,
    CLOCK,
    DISPATCHER,
    FLOW_LIBRARY,
    FLOW_RESTARTER,
    HEALTH,
    INGEST_SETTINGS,
    MEDIA,
    METRICS,
    SENDER,
    SETTINGS,
    STORE,
    TEMPLATE_SYNC,
)
from engine.web.refusals import refusal_middleware

log = logging.getLogger(__name__)

YOUNG_GC_THRESHOLD = 10_000  # Python's default is 700 allocations
GENERATED_API_TOKEN = web.AppKey("generated_api_token", str)
"""Set when this start made the API token, so the launcher can show it once."""
BACKGROUND = web.AppKey("background", Background)
"""Which background parts this web process runs (default: as the settings say)."""


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    background: Background | None = None,
) -> web.Application:
    app = web.Application(
        middlewares=[
            health.metrics_middleware,
            error_middleware,
            api_auth_middleware,
            console_middleware,  # agents' console sessions and CSRF
            refusal_middleware,  # the engine parts' refusals as REST answers
        ]
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[BACKGROUND] = background or Background.of(settings)
    app.cleanup_ctx.append(_parts)
    routes = (
        *(health, webhook, contacts, templates, messages, flows, agents, conversations),
        *(broadcasts, sequences, numbers, consent),
        desk_work,
    )
    for module in routes:
        app.add_routes(module.routes)
    if settings.simulator_enabled:
        app.add_routes(simulator.routes)
    setup_console(app)
    app.on_startup.append(_settle_garbage_collector)  # after every lifetime has started
    return app


async def _parts(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the parts of this process, and the API token, for the app's life.

    ``BOT_HANDLER``, set before start, replaces the bot as the answerer of customers."""
    settings = app[SETTINGS]
    if not settings.wa_app_secret:
        log.warning(
            "WA_APP_SECRET IS NOT SET: POST /webhook accepts notifications without checking "
            "their X-Hub-Signature-256, so anyone who can reach it can post messages and "
            "statuses. Set WA_APP_SECRET to the Meta app's secret before going live."
        )
    handler: ConversationHandler | None = app.get(BOT_HANDLER)
    async with assemble(
        settings,
        clock=app[CLOCK],
        metrics=app[METRICS],
        background=app[BACKGROUND],
        conversation_handler=handler,
    ) as parts:
        app[STORE] = parts.store
        app[HEALTH] = parts.health
        app[API_TOKEN_CHECK] = tokens = ApiTokenCheck(parts.store, settings.api_token)
        generated = await tokens.start()
        if generated is not None:
            app[GENERATED_API_TOKEN] = generated
        app[SENDER] = parts.sender
        app[CALLBACKS] = parts.callbacks
        app[CALLBACK_SECRET] = parts.callback_secret
        app[CAMPAIGNS] = parts.campaigns
        if parts.template_sync is not None:
            app[TEMPLATE_SYNC] = parts.template_sync
        app[FLOW_LIBRARY] = parts.flows
        app[FLOW_RESTARTER] = parts.bot  # a release may restart a flow (agents)
        if handler is None:
            app[BOT_HANDLER] = parts.bot
        app[DISPATCHER] = parts.dispatcher
        app[INGEST_SETTINGS] = parts.ingest
        if parts.media is not None:
            app[MEDIA] = parts.media
        if parts.simulator is not None:
            app[SIMULATOR] = parts.simulator
            # What it received (one-time codes too) and failure injection: API token holders.
            access = None if settings.simulator_open else tokens.accepts
            app[SIMULATOR_CONTROL] = ControlAccess(access)
        yield


async def _settle_garbage_collector(app: web.Application) -> None:
    """What start-up made (modules, schemas, templates, flows) lives as long as the
    server: move it out of the collector's sight, so that a full collection under load
    looks only at what requests made; and collect young objects less often, since each
    webhook makes a few hundred of them."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)

"""The composition root: every part of optinflow built from the settings, in one place.

``python webhook_server.py`` and ``python -m engine worker`` both run :func:`assemble`;
the web app only mounts routes over what it returns. Which parts *run* depends on the
process's role:

- the background parts run in the worker, and in the web process unless
  ``OUTBOUND_WORKER=false``: the sending parts (sender, integration callbacks, campaign
  worker) and the answering parts (the inbound hand-off to the bot, flow wake-ups);
- everything else is built in every process, since request handlers use it (the store,
  the flows for ``GET /api/v1/flows``, the bot for an agent's "release and restart").

Parts start in the order they are needed and stop in the reverse one: the store first
and last; the background parts after everything they use, and first on the way out, all
at once, each waiting at most ``SHUTDOWN_GRACE_SECONDS`` for its calls in flight before
putting them back. Each background part keeps a heartbeat in ``Parts.health``
(:mod:`engine.background`), which ``/healthz`` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from engine.background import Health, Heartbeat, stop_within
from engine.campaigns.broadcasts import BroadcastSettings
from engine.campaigns.worker import CampaignConfig, CampaignWorker
from engine.catalogue import load_templates
from engine.clock import Clock, SystemClock
from engine.config import Settings
from engine.devtools.simulator import SIMULATOR_TOKEN, Simulator
from engine.flows.bot import BotHandler
from engine.flows.integrations import AiohttpCaller
from engine.flows.library import FlowLibrary
from engine.inbound.consent_intent import IntentSettings
from engine.inbound.consent_rules import ConsentRules
from engine.inbound.dispatcher import Dispatcher
from engine.inbound.handoff import ConversationHandler
from engine.inbound.ingest import IngestSettings
from engine.inbound.intent.choose import build_detector
from engine.media.cache import MediaCache
from engine.media.graph import MediaService
from engine.metrics import Metrics
from engine.outbound.callbacks import CallbackConfig, CallbackDispatcher, ensure_callback_secret
from engine.outbound.marketing import publish_limits
from engine.outbound.marketing_limit import MarketingLimitRetry
from engine.outbound.metrics import OutboundMetrics
from engine.outbound.numbers import register_configured
from engine.outbound.sender import Sender, SenderConfig
from engine.outbound.template_sync import TemplateSync, TemplateSyncMetrics
from engine.store import Store, Tx, open_store
from engine.whatsapp.client import CloudApiClient

log = logging.getLogger(__name__)

WAKEUP_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Background:
    """The background parts a process runs."""

    sending: bool
    """The sender, integration callbacks and the campaign worker."""
    answering: bool
    """The inbound hand-off to the conversation handler, and flow wake-ups."""

    @classmethod
    def of(cls, settings: Settings) -> Background:
        return cls(sending=settings.outbound_worker, answering=settings.outbound_worker)


@dataclass(slots=True)
class Parts:
    """What one process of optinflow is made of."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    store: Store
    sender: Sender
    callbacks: CallbackDispatcher
    callback_secret: str
    campaigns: CampaignWorker
    flows: FlowLibrary
    bot: BotHandler
    dispatcher: Dispatcher
    ingest: IngestSettings
    simulator: Simulator | None
    background: Background
    """Which background parts this process runs."""
    health: Health
    """The heartbeats of the background parts this process runs."""
    wakeups: Heartbeat
    conversation_handler: ConversationHandler | None = None
    """Answers customers while the bot owns the conversation; the bot unless an
    embedding application brings its own (see :func:`assemble`)."""
    template_sync: TemplateSync | None = None
    """Syncs the template catalogue from Meta (with ``WA_WABA_ID``); runs with the
    sending parts, and ``POST /api/v1/templates/sync`` uses it in every process."""
    media: MediaService | None = None
    """Media from and to the Graph API, with its disk cache (the console's)."""


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
        number_lease=timedelta(seconds=settings.outbound_number_lease_seconds),
        stop_grace=settings.shutdown_grace_seconds,
        marketing_messages_api=settings.wa_marketing_messages_api,
        marketing_limit=marketing_limit(settings),
    )


def marketing_limit(settings: Settings) -> MarketingLimitRetry:
    return MarketingLimitRetry(
        retry=timedelta(hours=settings.marketing_limit_retry_hours),
        retries=settings.marketing_limit_retries,
    )


def campaign_config(settings: Settings) -> CampaignConfig:
    return CampaignConfig(
        broadcasts=BroadcastSettings(
            batch_size=settings.broadcast_batch_size,
            guard_sample=settings.broadcast_guard_sample,
            guard_max_failure_share=settings.broadcast_guard_max_failure_share,
        ),
        poll_seconds=settings.campaign_poll_seconds,
        stop_grace=settings.shutdown_grace_seconds,
    )


def ingest_settings(settings: Settings) -> IngestSettings:
    return IngestSettings(
        rules=ConsentRules.build(
            stop_words=settings.consent_stop_keywords,
            start_words=settings.consent_start_keywords,
            stop_payloads=settings.consent_stop_payloads,
            start_payloads=settings.consent_start_payloads,
            stop_reply=settings.consent_stop_reply,
            start_reply=settings.consent_start_reply,
        ),
        default_opt_in=settings.default_marketing_opt_in,
        marketing_limit=marketing_limit(settings),
        intent=IntentSettings(
            detector=build_detector(settings.consent_intent_detector),
            ask_again_after=timedelta(days=settings.consent_intent_ask_again_days),
        ),
        default_number=settings.wa_phone_number_id,
    )


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    background: Background | None = None,
    conversation_handler: ConversationHandler | None = None,
) -> AsyncIterator[Parts]:
    """Build every part, start the background ones ``background`` names (default: all of
    them, or none with ``OUTBOUND_WORKER=false``), and stop and close everything on the
    way out.

    ``conversation_handler`` replaces the bot as the answerer of customers (an
    embedding application's own, or a test's)."""
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    health = Health(metrics, stall_seconds=settings.health_stall_seconds)
    run = background or Background.of(settings)
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(
            settings.database_url,
            clock=clock,
            pool_size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout_seconds,
        )
        stack.push_async_callback(store.close)
        await _load_catalogue(store, settings)
        await _register_configured_number(store, settings, clock)
        limits = settings.marketing_limits
        await store.write(lambda tx: publish_limits(tx, limits))

        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.outbound_concurrency)
        )
        stack.push_async_callback(http.close)
        simulator = await _start_simulator(settings, store, clock, stack)
        client = CloudApiClient(
            http,
            graph_base=settings.graph_base,
            api_version=settings.wa_api_version,
            access_token=settings.wa_access_token or SIMULATOR_TOKEN,
            timeout_seconds=settings.outbound_http_timeout_seconds,
        )
        media = MediaService(
            http,
            MediaCache(
                settings.media_cache_dir,
                max_bytes=int(settings.media_cache_max_mb * 1024 * 1024),
            ),
            graph_base=settings.graph_base,
            api_version=settings.wa_api_version,
            access_token=settings.wa_access_token or SIMULATOR_TOKEN,
        )
        outbound_metrics = OutboundMetrics(metrics.registry)
        secret = await ensure_callback_secret(store, settings.callback_secret)
        sender = Sender(
            store,
            client,
            clock,
            sender_config(settings),
            metrics=outbound_metrics,
            health=health,
        )
        callbacks = CallbackDispatcher(
            store,
            http,
            clock,
            CallbackConfig(
                secret=secret,
                max_tries=settings.callback_max_tries,
                stop_grace=settings.shutdown_grace_seconds,
            ),
            metrics=outbound_metrics,
            health=health,
        )
        campaigns = CampaignWorker(store, clock, campaign_config(settings), health=health)
        template_sync = None
        if settings.wa_waba_id is not None:
            template_sync = TemplateSync(
                store,
                client,
                settings.wa_waba_id,
                every=timedelta(minutes=settings.template_sync_minutes),
                health=health,
                metrics=TemplateSyncMetrics(metrics.registry),
                stop_grace=settings.shutdown_grace_seconds,
            )

        library = FlowLibrary(settings.flows_dir)
        await library.load(store)
        flow_http = aiohttp.ClientSession()
        stack.push_async_callback(flow_http.close)
        bot = BotHandler(store, library, clock, AiohttpCaller(flow_http))
        parts = Parts(
            settings=settings,
            clock=clock,
            metrics=metrics,
            store=store,
            sender=sender,
            callbacks=callbacks,
            callback_secret=secret,
            campaigns=campaigns,
            flows=library,
            bot=bot,
            dispatcher=Dispatcher(
                store,
                clock,
                lambda: parts.conversation_handler,
                stop_grace=settings.shutdown_grace_seconds,
                health=health,
            ),
            ingest=ingest_settings(settings),
            simulator=simulator,
            background=run,
            health=health,
            wakeups=health.heartbeat(
                "wakeups", stall_after=max(health.stall_seconds, 10 * WAKEUP_POLL_SECONDS)
            ),
            conversation_handler=conversation_handler or bot,
            template_sync=template_sync,
            media=media,
        )
        await _start_background(parts, stack)
        yield parts


async def _load_catalogue(store: Store, settings: Settings) -> None:
    if settings.templates_file is None or not settings.templates_file.exists():
        return
    catalogue = load_templates(settings.templates_file)

    async def put_all(tx: Tx) -> None:
        for template in catalogue:
            # What Meta said of a template (its status, id, quality) outlives a restart:
            # the file gives the content, the webhooks and syncs the state.
            stored = await tx.templates.get(template.name, template.language)
            if stored is not None and stored.id is not None:
                meta_state = {"status", "id", "quality_score", "category", "components"}
                kept = stored.model_dump(include=meta_state - template.model_fields_set)
                template = template.model_copy(update=kept)
            await tx.templates.put(template)

    await store.write(put_all)
    log.info("loaded %d templates from %s", len(catalogue), settings.templates_file)


async def _register_configured_number(store: Store, settings: Settings, clock: Clock) -> None:
    phone_number_id, display = settings.wa_phone_number_id, settings.wa_display_phone_number
    now = clock.now()
    await store.write(lambda tx: register_configured(tx, phone_number_id, display, now=now))


async def _start_simulator(
    settings: Settings, store: Store, clock: Clock, stack: contextlib.AsyncExitStack
) -> Simulator | None:
    """The built-in Cloud API simulator, when no access token is set (it is served by the
    web process's routes; a worker posts to it over HTTP like to Meta)."""
    if not settings.simulator_enabled:
        return None
    simulator = Simulator(
        store=store,
        clock=clock,
        phone_number_id=settings.wa_phone_number_id,
        display_phone_number=settings.wa_display_phone_number,
        webhook_url=settings.simulator_webhook_url or settings.base_url + "/webhook",
        app_secret=settings.wa_app_secret,
        access_token=SIMULATOR_TOKEN,  # what our client posts without WA_ACCESS_TOKEN
        status_delay_seconds=settings.simulator_status_delay_seconds,
        templates_file=settings.templates_file,
    )
    if settings.wa_waba_id is not None:
        simulator.waba_id = settings.wa_waba_id
    await simulator.start()
    stack.push_async_callback(simulator.close)
    return simulator


async def _start_background(parts: Parts, stack: contextlib.AsyncExitStack) -> None:
    stops: list[Callable[[], Awaitable[None]]] = []
    if parts.background.sending:
        parts.sender.start()
        parts.callbacks.start()
        parts.campaigns.start()
        stops += [parts.sender.stop, parts.callbacks.stop, parts.campaigns.stop]
        if parts.template_sync is not None:
            parts.template_sync.start()
            stops.append(parts.template_sync.stop)
    if parts.background.answering:
        wakeups = asyncio.create_task(
            parts.bot.run_wakeups(parts.wakeups, WAKEUP_POLL_SECONDS), name="flow-wakeups"
        )
        grace = parts.settings.shutdown_grace_seconds
        parts.dispatcher.start()
        stops += [lambda: stop_within(parts.wakeups, wakeups, grace), parts.dispatcher.stop]

    async def stop_all() -> None:
        # At once, so the whole stop takes one grace, not one per part.
        results = await asyncio.gather(*(stop() for stop in stops), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("a background part did not stop cleanly: %s", result, exc_info=result)

    if stops:
        stack.push_async_callback(stop_all)

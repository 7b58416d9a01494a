"""Typed application state (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web

from engine.agents.ownership import FlowRestarter
from engine.background import Health
from engine.campaigns.worker import CampaignWorker
from engine.clock import Clock
from engine.config import Settings
from engine.flows.library import FlowLibrary
from engine.inbound.dispatcher import Dispatcher
from engine.inbound.handoff import ConversationHandler
from engine.inbound.ingest import IngestSettings
from engine.media.graph import MediaService
from engine.metrics import Metrics
from engine.outbound.callbacks import CallbackDispatcher
from engine.outbound.sender import Sender
from engine.outbound.template_sync import TemplateSync
from engine.store import Store
from engine.web.api_token import ApiTokenCheck

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
HEALTH = web.AppKey("health", Health)
"""The heartbeats of the background parts this process runs (``/healthz``)."""
API_TOKEN_CHECK = web.AppKey("api_token_check", ApiTokenCheck)

# Agents: the flows runtime's hook for "release and restart a flow"; unset,
# a release still records the request (conversation events) but starts nothing.
FLOW_RESTARTER = web.AppKey[FlowRestarter]("flow_restarter")
# Bot flows: the loaded flows.
FLOW_LIBRARY = web.AppKey("flow_library", FlowLibrary)
# Inbound. BOT_HANDLER answers customers while the bot owns the conversation;
# when it is unset, inbound messages are stored and marked handled, nothing more.
BOT_HANDLER = web.AppKey("bot_handler", ConversationHandler)
DISPATCHER = web.AppKey("inbound_dispatcher", Dispatcher)
INGEST_SETTINGS = web.AppKey("ingest_settings", IngestSettings)
# Outbound.
SENDER = web.AppKey("sender", Sender)
CALLBACKS = web.AppKey("callbacks", CallbackDispatcher)
CALLBACK_SECRET = web.AppKey("callback_secret", str)
# Campaigns: plans broadcasts, fires sequence timers, guards broadcasts.
CAMPAIGNS = web.AppKey("campaigns", CampaignWorker)
# Templates: syncs the catalogue from Meta; unset without WA_WABA_ID.
TEMPLATE_SYNC = web.AppKey("template_sync", TemplateSync)
# Media: fetched from and uploaded to the Graph API, cached on disk (the console's).
MEDIA = web.AppKey("media", MediaService)

"""Typed application state (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web

from engine.clock import Clock
from engine.config import Settings
from engine.metrics import Metrics
from engine.outbound.callbacks import CallbackDispatcher
from engine.outbound.sender import Sender
from engine.store import Store

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
API_TOKEN_HASH = web.AppKey("api_token_hash", bytes)

# Outbound (issue 5).
SENDER = web.AppKey("sender", Sender)
CALLBACKS = web.AppKey("callbacks", CallbackDispatcher)
CALLBACK_SECRET = web.AppKey("callback_secret", str)

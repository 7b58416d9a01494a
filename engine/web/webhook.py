"""The WhatsApp Cloud API webhook (openapi.yaml, /webhook): Meta's verification handshake and its
notifications.

``POST /webhook`` answers only once the notification is stored: the signature is
checked over the raw bytes (when ``WA_APP_SECRET`` is set), the JSON is parsed, and one
store job records every message, contact, window, status and consent signal in it.
Handing the messages to the bot happens after the answer (the dispatcher).

===========================================  ======  ===========================
request                                      answer  stored
===========================================  ======  ===========================
a notification (also a redelivery)           200     what is new in it; an item
                                                     that does not validate is
                                                     left out, logged and counted
signature missing or wrong                   401     nothing
body over 1 MiB                              413     nothing
not JSON                                     400     nothing
not a notification envelope (no ``entry``    400     nothing
list, ``changes`` that are not objects, ...)
===========================================  ======  ===========================

A correctly signed notification is never refused for what its items say: Meta
redelivers a refused notification for days, and one odd item would hold back every
good one with it.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from engine.inbound.consent_intent import read_intents
from engine.inbound.ingest import IngestResult, ingest
from engine.store import Tx
from engine.web.error_answers import ApiError
from engine.web.keys import (
    CLOCK,
    DISPATCHER,
    INGEST_SETTINGS,
    METRICS,
    SETTINGS,
    STORE,
)
from engine.whatsapp import signature
from engine.whatsapp.webhook import (
    WHATSAPP_OBJECT,
    InvalidNotification,
    Notification,
    read_notification,
)

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_BODY_BYTES = 1024 * 1024
RECEIVED = b'{"status": "received"}'


@routes.get("/webhook")
async def verify_subscription(request: web.Request) -> web.Response:
    query = request.query
    expected = request.app[SETTINGS].wa_verify_token
    token = query.get("hub.verify_token", "")
    if (
        query.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return web.Response(text=query.get("hub.challenge", ""))
    reason = (
        "WA_VERIFY_TOKEN is not set" if not expected else "hub.mode or hub.verify_token is wrong"
    )
    log.warning("webhook verification refused: %s", reason)
    raise ApiError(403, "verification_failed", f"webhook verification refused: {reason}")


@routes.post("/webhook")
async def receive_notification(request: web.Request) -> web.Response:
    app = request.app
    raw = await _read_body(request)
    secret = app[SETTINGS].wa_app_secret
    if secret and not signature.verify(raw, request.headers.get(signature.HEADER), secret):
        _refuse(request, "bad_signature")
        raise ApiError(
            401,
            "invalid_signature",
            f"{signature.HEADER} is missing or does not match the body",
        )
    try:
        notification = read_notification(raw)
    except InvalidNotification as error:
        _refuse(request, "invalid_notification", str(error))
        raise ApiError(
            400,
            "invalid_notification",
            f"not a WhatsApp notification: {error}",
            fields=[{"field": error.field, "message": error.message}],
        ) from None
    except ValueError as error:
        _refuse(request, "malformed_json", str(error))
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {error}") from None
    if notification.object != WHATSAPP_OBJECT:
        log.info("ignored a webhook notification about %r", notification.object)
        app[METRICS].webhook_notifications.labels("ignored").inc()
        return web.json_response({"status": "ignored"})

    _skip(app, notification)
    dispatcher = app[DISPATCHER]
    checkpoint = dispatcher.checkpoint()
    result = await _store(app, notification)
    if result.to_dispatch and dispatcher.running:
        dispatcher.hand_over(result.deliveries, checkpoint)
    _count(app, result)
    return web.Response(body=RECEIVED, content_type="application/json")


async def _store(app: web.Application, notification: Notification) -> IngestResult:
    settings = app[INGEST_SETTINGS]
    intents = await read_intents(notification, settings.intent.detector)
    now = app[CLOCK].now()

    async def job(tx: Tx) -> IngestResult:
        return await ingest(tx, notification, settings=settings, now=now, intents=intents)

    return await app[STORE].write(job)


async def _read_body(request: web.Request) -> bytes:
    too_large = ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        _refuse(request, "too_large", f"Content-Length {request.content_length}")
        raise too_large
    try:
        # aiohttp stops reading past its client_max_size (1 MiB unless the app says
        # otherwise); the length check below holds whatever it is.
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raw = b""
        size = MAX_BODY_BYTES + 1
    else:
        size = len(raw)
    if size > MAX_BODY_BYTES:
        _refuse(request, "too_large", f"over {MAX_BODY_BYTES} bytes")
        raise too_large
    return raw


def _refuse(request: web.Request, outcome: str, reason: str = "") -> None:
    log.warning(
        "webhook notification from %s refused (%s)%s",
        request.remote,
        outcome,
        f": {reason[:300]}" if reason else "",
    )
    request.app[METRICS].webhook_notifications.labels(outcome).inc()


def _skip(app: web.Application, notification: Notification) -> None:
    for item in notification.skipped():
        log.warning("webhook %s at %s left out: %s", item.kind, item.where, item.reason[:300])
        app[METRICS].webhook_items_skipped.labels(f"invalid_{item.kind}").inc()


def _count(app: web.Application, result: IngestResult) -> None:
    metrics = app[METRICS]
    metrics.webhook_notifications.labels("received").inc()
    if result.stored:
        metrics.inbound_messages.labels("stored").inc(result.stored)
    if result.duplicates:
        metrics.inbound_messages.labels("duplicate").inc(result.duplicates)
    for outcome, count in result.statuses.items():
        metrics.status_updates.labels(outcome.value).inc(count)
    for error in result.errors:
        metrics.whatsapp_errors.labels(str(error.code)).inc()
        log.warning("WhatsApp reported error %s: %s", error.code, error.describe())

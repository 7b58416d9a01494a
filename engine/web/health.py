"""Operations: liveness of the store and the background parts, and Prometheus metrics."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.web.error_answers import Handler
from engine.web.keys import HEALTH, METRICS, STORE

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 ``{"status": "ok"}``; 503 naming the store's error, and each background part
    of this process that died or stalled, and why."""
    body: dict[str, object] = {"status": "unavailable"}
    try:
        await request.app[STORE].ping()
    except Exception as error:
        log.warning("health check failed: %s", error)
        body["store"] = str(error)
    problems = request.app[HEALTH].problems()
    if problems:
        body["parts"] = {problem.part: problem.as_json() for problem in problems}
        log.warning("health check failed: %s", "; ".join(f"{p.part} {p.reason}" for p in problems))
    if len(body) > 1:
        return web.json_response(body, status=503)
    return web.json_response({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        instruments = request.app[METRICS]
        instruments.http_requests.labels(request.method, route, str(status)).inc()
        instruments.http_latency.labels(request.method, route).observe(
            time.perf_counter() - started
        )

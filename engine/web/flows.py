"""REST: the bot flows that run, and reloading them (API.md §2, Bot flows); and the
lifetime of the bot (flows loaded at start, the wakeup task, the http client)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from engine.flows.flowset import FlowsInvalid
from engine.flows.handler import BotHandler
from engine.flows.integrations import AiohttpCaller
from engine.flows.library import FlowLibrary
from engine.web.errors import ApiError
from engine.web.keys import BOT_HANDLER, CLOCK, FLOW_LIBRARY, FLOW_RESTARTER, SETTINGS, STORE

routes = web.RouteTableDef()

WAKEUP_POLL_SECONDS = 1.0


async def bot_lifetime(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: load the flows (a broken flows folder stops the start with every
    problem listed), build the :class:`BotHandler`, fire wakeups in the background."""
    library = FlowLibrary(app[SETTINGS].flows_dir)
    await library.load(app[STORE])
    async with aiohttp.ClientSession() as client:
        handler = BotHandler(app[STORE], library, app[CLOCK], AiohttpCaller(client))
        app[FLOW_LIBRARY] = library
        if BOT_HANDLER not in app:  # an embedding application may bring its own
            app[BOT_HANDLER] = handler
        app[FLOW_RESTARTER] = handler  # a release may restart a flow (agents)
        wakeups = asyncio.create_task(handler.run_wakeups(WAKEUP_POLL_SECONDS), name="flow-wakeups")
        try:
            yield
        finally:
            wakeups.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wakeups


@routes.get("/api/v1/flows")
async def list_flows(request: web.Request) -> web.Response:
    return web.json_response({"flows": request.app[FLOW_LIBRARY].flows.summary()})


@routes.post("/api/v1/flows/reload")
async def reload_flows(request: web.Request) -> web.Response:
    library = request.app[FLOW_LIBRARY]
    try:
        flows = await library.load(request.app[STORE])
    except FlowsInvalid as invalid:
        raise ApiError(
            422,
            "invalid_flows",
            f"{len(invalid.problems)} problem(s) in the flows; the flows that were running "
            "keep running",
            errors=[problem.as_json() for problem in invalid.problems],
        ) from None
    return web.json_response({"flows": flows.summary()})

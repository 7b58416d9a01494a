"""REST: the bot flows that run, and reloading them."""

from __future__ import annotations

from aiohttp import web

from engine.flows.flowset import FlowsInvalid
from engine.web.error_answers import ApiError
from engine.web.keys import FLOW_LIBRARY, STORE

routes = web.RouteTableDef()


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

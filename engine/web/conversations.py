"""REST: conversations, the agents' compose path.

The REST API authenticates with the bearer token and names the acting agent (by
email) in the body; the console does the same through the signed-in agent.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.agents import desk
from engine.agents.view import conversation_json, load_view, summary_json, view_json
from engine.contacts.directory import require_contact
from engine.models.conversation import Owner
from engine.store.desk import SummaryFilter
from engine.web.addresses import contact_address
from engine.web.compose_body import ComposeBody, composed_json, idempotency_key
from engine.web.keys import CLOCK, FLOW_RESTARTER, STORE
from engine.web.validation import Body, Email, parse_body, parse_query, read_body

routes = web.RouteTableDef()

FlowName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ConversationQuery(Body):
    owner: Owner | None = None
    agent: Email | None = Field(default=None, description="only those this agent owns")
    waiting: bool = Field(default=False, description="only those waiting in the agents' queue")
    limit: int = Field(default=100, ge=1, le=500)


class TakeoverBody(Body):
    agent: Email


class ReleaseBody(Body):
    agent: Email | None = None
    restart_flow: FlowName | None = None


@routes.get("/api/v1/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    query = parse_query(request, ConversationQuery)
    where = SummaryFilter(
        owner=query.owner, agent=query.agent, waiting=query.waiting, limit=query.limit
    )
    async with request.app[STORE].read() as tx:
        summaries = await tx.desk.summaries(where)
    return web.json_response({"conversations": [summary_json(s) for s in summaries]})


@routes.get("/api/v1/conversations/{contact}")
async def get_conversation(request: web.Request) -> web.Response:
    address = contact_address(request)
    async with request.app[STORE].read() as tx:
        contact = await require_contact(tx, address)
        view = await load_view(tx, contact, now=request.app[CLOCK].now())
    return web.json_response(view_json(view))


@routes.post("/api/v1/conversations/{contact}/takeover")
async def takeover_conversation(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, TakeoverBody)
    contact, conversation = await desk.take_over_as(
        request.app[STORE], address, body.agent, now=request.app[CLOCK].now()
    )
    return web.json_response(conversation_json(contact, conversation))


@routes.post("/api/v1/conversations/{contact}/release")
async def release_conversation(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = ReleaseBody()
    if await read_body(request):  # the body is optional
        body = await parse_body(request, ReleaseBody)
    contact, conversation, started = await desk.release_as(
        request.app[STORE],
        address,
        body.agent,
        restart_flow=body.restart_flow,
        restarter=request.app.get(FLOW_RESTARTER),
        now=request.app[CLOCK].now(),
    )
    data = conversation_json(contact, conversation)
    data["restart_flow"] = (
        None if body.restart_flow is None else {"name": body.restart_flow, "started": started}
    )
    return web.json_response(data)


@routes.post("/api/v1/conversations/{contact}/messages")
async def compose_message(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, ComposeBody)
    composed = await desk.compose_as(
        request.app[STORE],
        address,
        body.agent,
        body.content(),
        confirm_opted_out=body.confirm_opted_out,
        now=request.app[CLOCK].now(),
        idempotency_key=idempotency_key(request, body),
    )
    return web.json_response(composed_json(composed), status=202)

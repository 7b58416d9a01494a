"""REST: conversations, the agents' compose path.

The REST API authenticates with the bearer token and names the acting agent (by
email) in the body; the console does the same through the signed-in agent.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints, model_validator

from engine.agents.compose import Composed, ComposeRequest, compose
from engine.agents.errors import (
    ConfirmationRequired,
    ConversationOwned,
    DeskError,
    InvalidTemplate,
    UnknownAgent,
    WindowClosed,
)
from engine.agents.ownership import release, take_over
from engine.agents.view import (
    MessageView,
    conversation_json,
    load_view,
    message_json,
    notice_json,
    summary_json,
    view_json,
)
from engine.models.agent import Agent
from engine.models.contact import Contact
from engine.models.content import TemplateContent, TextContent
from engine.models.conversation import Conversation, Owner
from engine.store import Tx
from engine.store.desk import SummaryFilter
from engine.web.agents import Email
from engine.web.contacts import contact_address, require_contact
from engine.web.errors import ApiError
from engine.web.keys import CLOCK, FLOW_RESTARTER, STORE
from engine.web.validation import Body, parse_body, parse_query

routes = web.RouteTableDef()

_STATUS: dict[type[DeskError], int] = {
    ConversationOwned: 409,
    ConfirmationRequired: 409,
    WindowClosed: 422,
    InvalidTemplate: 422,
}

Param = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
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


class TemplateChoice(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)]
    params: list[Param] = Field(default_factory=list)


class ComposeBody(Body):
    agent: Email
    text: Annotated[str, StringConstraints(max_length=4096)] | None = None
    template: TemplateChoice | None = None
    confirm_opted_out: bool = False

    @model_validator(mode="after")
    def _text_or_template(self) -> ComposeBody:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text and template")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self

    def content(self) -> TextContent | TemplateContent:
        if self.template is not None:
            return TemplateContent(
                name=self.template.name,
                language=self.template.language,
                params=tuple(self.template.params),
            )
        assert self.text is not None
        return TextContent(body=self.text)


def desk_error(error: DeskError) -> ApiError:
    """The REST answer to a refusal; it carries the contact's notices like any answer."""
    notices = [notice_json(n) for n in error.notices]
    if isinstance(error, UnknownAgent):
        return ApiError(
            422,
            "invalid_request",
            f"agent: {error.message}",
            fields=[{"field": "agent", "message": error.message}],
        )
    if isinstance(error, InvalidTemplate):
        return ApiError(
            422,
            "invalid_request",
            error.message,
            fields=[{"field": error.field, "message": error.field_message}],
            notices=notices,
        )
    return ApiError(
        _STATUS.get(type(error), 409), error.code, error.message, **error.details, notices=notices
    )


async def require_agent(tx: Tx, email: str) -> Agent:
    agent = await tx.agents.get(email)
    if agent is None:
        raise UnknownAgent(email)
    return agent


def composed_json(composed: Composed) -> dict[str, Any]:
    data = message_json(MessageView(composed.message, composed.record))
    data["notices"] = [notice_json(n) for n in composed.notices]
    return data


async def compose_as(request: web.Request, address: str, body: ComposeBody) -> Composed:
    """Run the compose job for the agent ``body`` names; a refusal becomes an ApiError."""
    now = request.app[CLOCK].now()

    async def job(tx: Tx) -> Composed:
        contact = await require_contact(tx, address)
        agent = await require_agent(tx, body.agent)
        request_ = ComposeRequest(agent, body.content(), body.confirm_opted_out)
        return await compose(tx, contact, request_, now=now)

    try:
        return await request.app[STORE].write(job)
    except DeskError as error:
        raise desk_error(error) from None


async def take_over_as(
    request: web.Request, address: str, email: str
) -> tuple[Contact, Conversation]:
    now = request.app[CLOCK].now()

    async def job(tx: Tx) -> tuple[Contact, Conversation]:
        contact = await require_contact(tx, address)
        agent = await require_agent(tx, email)
        conversation, _ = await take_over(tx, contact, agent, now=now)
        return contact, conversation

    try:
        return await request.app[STORE].write(job)
    except DeskError as error:
        raise desk_error(error) from None


async def release_as(
    request: web.Request, address: str, email: str | None, restart_flow: str | None
) -> tuple[Contact, Conversation, bool]:
    """Release, then restart the flow when asked and a flows runtime is wired in.
    Returns whether the flow was started."""
    restarter = request.app.get(FLOW_RESTARTER)
    if restart_flow is not None and restarter is not None and not restarter.has_flow(restart_flow):
        raise ApiError(
            422,
            "invalid_request",
            f"restart_flow: there is no flow named {restart_flow}",
            fields=[{"field": "restart_flow", "message": f"there is no flow named {restart_flow}"}],
        )
    now = request.app[CLOCK].now()

    async def job(tx: Tx) -> tuple[Contact, Conversation]:
        contact = await require_contact(tx, address)
        agent = None if email is None else await require_agent(tx, email)
        return contact, await release(tx, contact, by=agent, restart_flow=restart_flow, now=now)

    try:
        contact, conversation = await request.app[STORE].write(job)
    except DeskError as error:
        raise desk_error(error) from None
    if restart_flow is not None and restarter is not None:
        await restarter.restart(contact, restart_flow)
        return contact, conversation, True
    return contact, conversation, False


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
    contact, conversation = await take_over_as(request, address, body.agent)
    return web.json_response(conversation_json(contact, conversation))


@routes.post("/api/v1/conversations/{contact}/release")
async def release_conversation(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = ReleaseBody()
    if await request.read():
        body = await parse_body(request, ReleaseBody)
    contact, conversation, started = await release_as(
        request, address, body.agent, body.restart_flow
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
    composed = await compose_as(request, address, body)
    return web.json_response(composed_json(composed), status=202)

"""Console routes: sign-in, the conversation pages, and the JSON its script polls.

Pages are rendered on the server; the script (``static/console.js``) keeps the lists'
unread counts and the open conversation fresh, and drives the compose box. What an
agent does goes through the same use cases as the REST API (:mod:`engine.agents.desk`,
:mod:`engine.contacts.directory`), named as the signed-in agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.agents import desk
from engine.agents.compose import confirmation_reason, notices_for
from engine.agents.refusals import ConversationOwned, DeskError
from engine.agents.view import (
    HISTORY_PAGE,
    ConversationView,
    MessageView,
    history_page,
    load_view,
    message_json,
    notice_json,
    summary_json,
    view_json,
)
from engine.contacts import directory
from engine.contacts.refusals import ContactRefusal, InvalidAddress
from engine.models.agent import Agent, ConversationEvent, ConversationSummary
from engine.models.contact import ConsentEvent, ConsentSource, Contact
from engine.models.conversation import Owner
from engine.models.template import Template, TemplateCategory
from engine.store import Tx
from engine.store.contacts import Consent
from engine.store.desk import SummaryFilter
from engine.web.addresses import contact_address
from engine.web.compose_body import ComposeBody, composed_json, idempotency_key
from engine.web.console import live
from engine.web.console.auth import (
    LOGIN_COOKIE,
    PREFIX,
    SESSION,
    ConsoleRefusal,
    current_session,
    end_session,
    login_form_token,
    same_token,
    sign_in,
    start_session,
)
from engine.web.console.business_numbers import (
    NumberLabels,
    conversation_number,
    label_of,
    number_labels,
)
from engine.web.console.consent_text import consent_json
from engine.web.console.desk_work import DeskPanel, desk_panel
from engine.web.console.intent_suggestion import Suggestion, load_suggestion
from engine.web.console.live import LIVE_HUB
from engine.web.console.marketing.access import sections_for
from engine.web.console.render import SECURITY_HEADERS, fill, format_phone, page, render
from engine.web.error_answers import ApiError
from engine.web.forwarded import client_address
from engine.web.keys import CLOCK, FLOW_RESTARTER, SETTINGS, STORE
from engine.web.refusals import api_error
from engine.web.validation import Body, parse_body, read_json, validation_context

routes = web.RouteTableDef()

REFUSED_TEXT = {
    "not_found": "That conversation is no longer there.",
    "unknown_agent": "Your agent account is no longer there. Sign in again.",
}
"""What the page says after a refused button (the address bar keeps no POST)."""

CATEGORY_ORDER = (
    TemplateCategory.MARKETING,
    TemplateCategory.UTILITY,
    TemplateCategory.AUTHENTICATION,
)


class OptInBody(Body):
    marketing_opt_in: bool
    note: Annotated[str, StringConstraints(max_length=1000)] | None = Field(default=None)


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    template: Template
    confirm: str | None
    """The send rules' reason to ask for confirmation, when it will ask."""


@dataclass(frozen=True, slots=True)
class Selected:
    view: ConversationView
    consent: list[ConsentEvent]
    templates: list[tuple[TemplateCategory, list[TemplateChoice]]]
    suggestion: Suggestion | None = None
    more: bool = False
    """Earlier messages exist ("load earlier")."""

    @property
    def timeline(self) -> list[tuple[str, MessageView | ConversationEvent]]:
        """Messages and changes of hands, in the order they happened (a message at its
        own time, however late it arrived); events older than the first message shown
        wait for "load earlier"."""
        messages = self.view.messages
        first = min((m.at for m in messages), default=None)
        items: list[tuple[datetime, int, str, MessageView | ConversationEvent]] = [
            (m.at, 1, "message", m) for m in messages
        ]
        items += [
            (e.at, 0, "event", e)
            for e in self.view.events
            if first is None or not self.more or e.at >= first
        ]
        items.sort(key=lambda item: (item[0], item[1]))
        return [(kind, item) for _, _, kind, item in items]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only somewhere inside the console."""
    if target and (target == PREFIX or target.startswith(PREFIX + "/")):
        return target
    return PREFIX


def me(request: web.Request) -> Agent:
    return request[SESSION].agent


def json_answer(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=SECURITY_HEADERS)


# --- sign-in and sign-out ------------------------------------------------------------------


def login_page(
    request: web.Request, *, status: int = 200, error: str | None = None, email: str = ""
) -> web.Response:
    response = page(request, status=status)
    token = login_form_token(request, response)
    return fill(
        request,
        response,
        "login.html",
        error=error,
        email=email,
        token=token,
        next=safe_next(request.query.get("next")),
    )


@routes.get("/console/login")
async def show_login(request: web.Request) -> web.StreamResponse:
    if await current_session(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return login_page(request)


@routes.post("/console/login")
async def submit_login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    expected = request.cookies.get(LOGIN_COOKIE)
    if expected is None or not same_token(str(form.get("csrf_token", "")) or None, expected):
        raise ConsoleRefusal(
            403,
            "csrf_failed",
            "The sign-in form expired or came from elsewhere. Reload the page and sign in again.",
        )
    if not email or not password:
        return login_page(request, status=422, error="Enter your email and password.", email=email)
    outcome = await sign_in(
        request.app[STORE],
        request.app[SETTINGS],
        email,
        password,
        address=client_address(request),
        now=request.app[CLOCK].now(),
    )
    if outcome.paused_for is not None:
        minutes = max(1, round(outcome.paused_for.total_seconds() / 60))
        return login_page(
            request,
            status=429,
            email=email,
            error=f"Too many failed sign-ins. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
        )
    if outcome.agent is None:
        return login_page(request, status=401, error="Wrong email or password.", email=email)
    target = safe_next(str(form.get("next", "")) or None)
    response = web.Response(status=303, headers={"Location": target, **SECURITY_HEADERS})
    await start_session(request, response, outcome.agent)
    return response


@routes.post("/console/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/console/login"})
    await end_session(request, response)
    return response


# --- pages ---------------------------------------------------------------------------------------


async def lists_for(tx: Tx, agent: Agent) -> dict[str, list[ConversationSummary]]:
    """The three lists, with unread counts as ``agent`` has read them."""
    me = agent.email
    return {
        "queue": await tx.desk.summaries(SummaryFilter(waiting=True, reader=me)),
        "mine": await tx.desk.summaries(SummaryFilter(agent=me, reader=me)),
        "bot": await tx.desk.summaries(SummaryFilter(owner=Owner.BOT, reader=me)),
    }


def row_json(summary: ConversationSummary, labels: NumberLabels) -> dict[str, Any]:
    """A list row as the script draws it."""
    return {
        **summary_json(summary),
        "phone": format_phone(summary.address),
        "number": label_of(labels, summary.phone_number_id),
    }


def list_of(summary: ConversationSummary) -> str:
    if summary.owner is Owner.BOT:
        return "bot"
    return "queue" if summary.agent is None else "mine"


def readable(refusal: ContactRefusal | DeskError, agent_names: dict[str, str]) -> str:
    """A refusal in the console's words: names, not emails."""
    if isinstance(refusal, ConversationOwned):
        return f"{agent_names.get(refusal.owner, refusal.owner)} already has this conversation."
    return api_error(refusal).message


async def agent_names_of(request: web.Request) -> dict[str, str]:
    async with request.app[STORE].read() as tx:
        return {a.email: a.name for a in await tx.agents.all()}


def friendly(name: str) -> str:
    """A template's name as people say it.

    >>> friendly("order_update_v2")
    'Order update v2'
    """
    return name.replace("_", " ").strip().capitalize()


def template_json(template: Template) -> dict[str, Any]:
    """What the picker shows: header, body, footer, buttons."""
    return {
        "name": template.name,
        "language": template.language,
        "label": friendly(template.name),
        "header": template.header,
        "body": template.body,
        "footer": template.footer,
        "buttons": [button.text for button in template.buttons],
        "params": template.param_count,
    }


def template_groups(
    contact: Contact, templates: list[Template]
) -> list[tuple[TemplateCategory, list[TemplateChoice]]]:
    groups = []
    for category in CATEGORY_ORDER:
        members = [
            TemplateChoice(t, confirmation_reason(contact, t.category))
            for t in templates
            if t.category is category
        ]
        if members:
            groups.append((category, members))
    return groups


async def mark_read(request: web.Request, address: str) -> None:
    agent, now = me(request), request.app[CLOCK].now()

    async def job(tx: Tx) -> None:
        contact = await tx.contacts.get(address)
        if contact is not None:
            await tx.desk.mark_read(contact.id, agent=agent.email, at=now)

    await request.app[STORE].write(job)


def active_list(agent: Agent, view: ConversationView | None, lists: dict[str, Any]) -> str:
    if view is not None:
        conversation = view.conversation
        if conversation.owner is Owner.BOT:
            return "bot"
        if conversation.agent is None:
            return "queue"
        return "mine"
    return "queue" if lists["queue"] or not lists["mine"] else "mine"


async def console_page(
    request: web.Request, address: str | None, *, flash: str | None = None, status: int = 200
) -> web.Response:
    agent, now = me(request), request.app[CLOCK].now()
    if address is not None:
        await mark_read(request, address)
    # Taken before reading: the page is up to date at least to this change, and its
    # event stream starts after it.
    live_after = request.app[LIVE_HUB].cursor
    selected: Selected | None = None
    panel: DeskPanel | None = None
    business_number: str | None = None
    async with request.app[STORE].read() as tx:
        lists = await lists_for(tx, agent)
        agents = {a.email: a.name for a in await tx.agents.all()}
        labels = await number_labels(tx)
        if address is not None:
            contact = await tx.contacts.get(address)
            if contact is None:
                return render(
                    request,
                    "error.html",
                    status=404,
                    message=f"There is no conversation with {address}.",
                )
            consent = await tx.contacts.consent_history(contact.id)
            view = await load_view(tx, contact, now=now, limit=HISTORY_PAGE)
            selected = Selected(
                view=view,
                consent=consent,
                templates=template_groups(contact, await tx.templates.list()),
                suggestion=await load_suggestion(tx, contact, consent),
                more=len(view.messages) == HISTORY_PAGE,
            )
            panel = await desk_panel(tx, contact)
            business_number = await conversation_number(tx, labels, contact.id)
    refused = request.query.get("refused")
    if flash is None and refused == "conversation_owned" and selected is not None:
        owner = selected.view.conversation.agent
        if owner is not None and owner != agent.email:
            flash = f"{agents.get(owner, owner)} already has this conversation."
    elif flash is None and refused:
        flash = REFUSED_TEXT.get(refused, "That could not be done: the page shows it as it is now.")
    return render(
        request,
        "console.html",
        status=status,
        me=agent,
        csrf_token=request[SESSION].csrf_token,
        lists=lists,
        active=active_list(agent, selected.view if selected else None, lists),
        selected=selected,
        agent_names=agents,
        flash=flash,
        Owner=Owner,
        nav=sections_for(agent.role),
        live_after=live_after,
        now=now,
        consent=[consent_json(e, agents) for e in reversed(selected.consent)] if selected else [],
        template_json=template_json,
        desk=panel,
        number_labels=labels,
        business_number=business_number,
    )


@routes.get("/console")
async def home(request: web.Request) -> web.Response:
    return await console_page(request, None)


@routes.get("/console/conversations/{contact}")
async def conversation_page(request: web.Request) -> web.Response:
    return await console_page(request, _address(request))


@routes.post("/console/conversations/{contact}/takeover")
async def takeover_button(request: web.Request) -> web.StreamResponse:
    address = _address(request)
    try:
        await desk.take_over_as(
            request.app[STORE], address, me(request).email, now=request.app[CLOCK].now()
        )
    except (ContactRefusal, DeskError) as refusal:
        # POST-redirect-GET: reloading the page shows the conversation, not a POST.
        raise web.HTTPSeeOther(refused_url(address, refusal)) from None
    raise web.HTTPSeeOther(f"/console/conversations/{address}")


@routes.post("/console/conversations/{contact}/release")
async def release_button(request: web.Request) -> web.StreamResponse:
    address = _address(request)
    try:
        await desk.release_as(
            request.app[STORE],
            address,
            me(request).email,
            restart_flow=None,
            restarter=request.app.get(FLOW_RESTARTER),
            now=request.app[CLOCK].now(),
        )
    except (ContactRefusal, DeskError) as refusal:
        raise web.HTTPSeeOther(refused_url(address, refusal)) from None
    raise web.HTTPSeeOther(f"/console/conversations/{address}")


def refused_url(address: str, refusal: ContactRefusal | DeskError) -> str:
    code = api_error(refusal).code
    return f"/console/conversations/{address}?refused={quote(code)}"


@routes.get("/console/conversations/{contact}/{action:takeover|release}")
async def after_button(request: web.Request) -> web.StreamResponse:
    """A reload of a button's address (an old history entry): the conversation."""
    raise web.HTTPSeeOther(f"/console/conversations/{_address(request)}")


def _address(request: web.Request) -> str:
    try:
        return contact_address(request)
    except InvalidAddress as refusal:
        raise ConsoleRefusal(404, "not_found", api_error(refusal).message) from None


# --- JSON for the console's script ----------------------------------------------------------------


@routes.get("/console/api/conversations")
async def poll_lists(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        lists = await lists_for(tx, me(request))
        labels = await number_labels(tx)
    return json_answer({name: [row_json(s, labels) for s in rows] for name, rows in lists.items()})


@routes.get("/console/api/conversations/{contact}")
async def poll_conversation(request: web.Request) -> web.Response:
    address = contact_address(request)
    await mark_read(request, address)
    now = request.app[CLOCK].now()
    async with request.app[STORE].read() as tx:
        contact = await directory.require_contact(tx, address)
        view = await load_view(tx, contact, now=now)
        names = {a.email: a.name for a in await tx.agents.all()}
        labels = await number_labels(tx)
        number = await conversation_number(tx, labels, contact.id)
    data = view_json(view)
    data["window_text"] = view.window.text
    data["number"] = number
    data["agent_names"] = names
    return json_answer(data)


@routes.post("/console/api/conversations/{contact}/messages")
async def send_message(request: web.Request) -> web.Response:
    address = contact_address(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    body = ComposeBody.model_validate(
        {**data, "agent": me(request).email}, context=validation_context(request)
    )
    try:
        composed = await desk.compose_as(
            request.app[STORE],
            address,
            body.agent,
            body.content(),
            confirm_opted_out=body.confirm_opted_out,
            now=request.app[CLOCK].now(),
            idempotency_key=idempotency_key(request, body),
        )
    except ConversationOwned as refusal:
        raise ApiError(
            409, refusal.code, readable(refusal, await agent_names_of(request))
        ) from None
    return json_answer(composed_json(composed), status=202)


@routes.get("/console/events")
async def live_events(request: web.Request) -> web.StreamResponse:
    """What changes on the desk, as server-sent events (see :mod:`.live`)."""
    email = me(request).email
    return await live.stream(request, lambda event: event.for_agent(email), SECURITY_HEADERS)


@routes.get("/console/api/conversations/{contact}/messages")
async def earlier_messages(request: web.Request) -> web.Response:
    """A page of history before message ``before`` (keyset paging, any length)."""
    address = contact_address(request)
    before = request.query.get("before") or None
    async with request.app[STORE].read() as tx:
        contact = await directory.require_contact(tx, address)
        page_ = await history_page(tx, contact, before=before)
        events = await tx.desk.events(contact.id, limit=1000)
    first = min((m.at for m in page_), default=None)
    return json_answer(
        {
            "messages": [message_json(m) for m in page_],
            "events": [
                e.model_dump(mode="json") for e in events if first is not None and e.at >= first
            ],
            "more": len(page_) == HISTORY_PAGE,
        }
    )


@routes.get("/console/api/conversations/{contact}/summary")
async def one_summary(request: web.Request) -> web.Response:
    """One conversation's list row, with this agent's unread count (a live update
    moved it to another list)."""
    address = contact_address(request)
    async with request.app[STORE].read() as tx:
        contact = await directory.require_contact(tx, address)
        rows = await tx.desk.summaries(
            SummaryFilter(contact_id=contact.id, reader=me(request).email, limit=1)
        )
        labels = await number_labels(tx)
    if not rows:
        raise ApiError(404, "not_found", f"There is no conversation with {address}.")
    summary = rows[0]
    return json_answer({**row_json(summary, labels), "list": list_of(summary)})


@routes.post("/console/api/conversations/{contact}/read")
async def read_now(request: web.Request) -> web.Response:
    """The agent has seen the open conversation up to now (their own read state)."""
    await mark_read(request, contact_address(request))
    return json_answer({"read": True})


@routes.post("/console/api/contacts/{contact}/opt-in")
async def set_opt_in(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, OptInBody)
    consent = Consent(
        ConsentSource.AGENT,
        actor=me(request).email,
        note=body.note,
        evidence={"agent": me(request).email, "page": request.path},
    )
    contact, history = await directory.set_opt_in(
        request.app[STORE], address, body.marketing_opt_in, consent
    )
    names = await agent_names_of(request)
    return json_answer(
        {
            "marketing_opt_in": contact.marketing_opt_in,
            "consent": [event.model_dump(mode="json") for event in history],
            "history": [consent_json(event, names) for event in reversed(history)],
            "notices": [notice_json(n) for n in notices_for(contact)],
        }
    )

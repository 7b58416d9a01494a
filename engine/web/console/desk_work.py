"""The console's desk work: private notes and assignments in the timeline, assign,
transfer and resolve, who has what, search and starting a conversation, and saved
replies (the admins' page, and the list the compose box's ``/`` picker reads).

The conversation page renders its messages; :func:`extras` gives the script
(``static/desk_work.js``) what it adds to them: media, locations and contact cards,
reactions on the message they react to, and the desk's own entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from jinja2 import Environment
from pydantic import StringConstraints

from engine.agents import assignment, notes, saved_replies
from engine.agents.assignment import Workload
from engine.agents.desk_work_wire import (
    assignment_json,
    contact_hit_json,
    entry_json,
    message_hit_json,
    reply_json,
)
from engine.agents.refusals import DeskError
from engine.agents.wire import json_time
from engine.contacts.directory import require_contact
from engine.models.agent import Agent, AgentRole, EventKind
from engine.models.contact import Contact
from engine.models.desk_work import Assignment, DeskEntry, SavedReply
from engine.store import Tx
from engine.store.messages import MessageFilter
from engine.web.addresses import contact_address
from engine.web.console.auth import SESSION
from engine.web.console.media import reaction_of, rich_body
from engine.web.console.render import SECURITY_HEADERS, TEMPLATES, render
from engine.web.keys import CLOCK, STORE
from engine.web.refusals import api_error
from engine.web.validation import Body, parse_body

routes = web.RouteTableDef()

EXTRAS_MESSAGES = 1000
"""How many of the latest messages the script enriches."""


@dataclass(frozen=True, slots=True)
class DeskPanel:
    """What the conversation page's desk partials show."""

    assignment: Assignment
    agents: list[Agent]
    workload: list[Workload]
    asked_for_a_person: bool
    """The bot handed the customer over (they asked for a person): releasing asks first."""


async def desk_panel(tx: Tx, contact: Contact) -> DeskPanel:
    agents = await tx.agents.all()
    handoff = await tx.flow_sessions.last_handoff(contact.id)
    releases = [e.at for e in await tx.desk.events(contact.id) if e.kind is EventKind.RELEASE]
    return DeskPanel(
        assignment=await tx.assignments.get(contact.id),
        agents=sorted(agents, key=lambda a: a.name.lower()),
        workload=await assignment.workload(tx),
        # Asked since the conversation last went back to the bot.
        asked_for_a_person=handoff is not None and (not releases or handoff.at > max(releases)),
    )


def me(request: web.Request) -> Agent:
    return request[SESSION].agent


def answer(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=SECURITY_HEADERS)


# --- what the script adds to the timeline ---------------------------------------------------


def timeline_entry(env: Environment, entry: DeskEntry, names: dict[str, str]) -> dict[str, Any]:
    """A desk entry as the conversation page's timeline takes it: its data, and its HTML
    (``names``: agents' names by email). The page's first load and the live updates
    both give entries this way, so a note looks the same however it arrived."""
    html = env.get_template("_desk_entry.html").render(entry=entry, names=names)
    return {**entry_json(entry), "at": json_time(entry.at), "html": html}


@routes.get("/console/api/conversations/{contact}/extras")
async def extras(request: web.Request) -> web.Response:
    address = contact_address(request)
    env = request.app[TEMPLATES]
    async with request.app[STORE].read() as tx:
        contact = await require_contact(tx, address)
        cursor = await tx.desk.recent_cursor(contact.id, keep=EXTRAS_MESSAGES)
        messages = await tx.messages.find(
            MessageFilter(contact_id=contact.id, after_id=cursor, limit=EXTRAS_MESSAGES)
        )
        entries = await tx.desk_log.entries(contact.id)
        names = {a.email: a.name for a in await tx.agents.all()}
        assigned = await tx.assignments.get(contact.id)
    by_wamid = {m.wamid: m.id for m in messages if m.wamid}
    bodies: dict[str, str] = {}
    reactions: dict[str, str] = {}
    hidden: list[str] = []
    media = env.get_template("_message_media.html")
    for message in messages:
        reaction = reaction_of(message)
        if reaction is not None:
            hidden.append(message.id)
            target = by_wamid.get(reaction[0])
            if target is not None:
                reactions[target] = reaction[1]  # the latest wins; "" removed it
            continue
        body = rich_body(message)
        if body is not None:
            bodies[message.id] = media.render(body=body)
    return answer(
        {
            "bodies": bodies,
            "reactions": {k: v for k, v in reactions.items() if v},
            "hidden": hidden,
            "entries": [timeline_entry(env, e, names) for e in entries],
            "assignment": assignment_json(address, assigned),
        }
    )


# --- notes, assignment -------------------------------------------------------------------------


class NoteBody(Body):
    text: Annotated[str, StringConstraints(max_length=4000)]


class AssignBody(Body):
    to: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


@routes.post("/console/api/conversations/{contact}/notes")
async def add_note(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, NoteBody)
    entry = await notes.add_note_as(
        request.app[STORE], address, me(request).email, body.text, now=request.app[CLOCK].now()
    )
    return answer(entry_json(entry), status=201)


@routes.post("/console/api/conversations/{contact}/assign")
async def assign(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, AssignBody)
    result = await assignment.assign_as(
        request.app[STORE],
        address,
        me(request).email,
        body.to.strip().lower(),
        note=body.note,
        now=request.app[CLOCK].now(),
    )
    return answer(assignment_json(address, result))


@routes.post("/console/api/conversations/{contact}/resolve")
async def resolve(request: web.Request) -> web.Response:
    address = contact_address(request)
    result = await assignment.resolve_as(
        request.app[STORE], address, me(request).email, now=request.app[CLOCK].now()
    )
    return answer(assignment_json(address, result))


@routes.post("/console/api/conversations/{contact}/reopen")
async def reopen(request: web.Request) -> web.Response:
    address = contact_address(request)
    result = await assignment.reopen_as(
        request.app[STORE], address, me(request).email, now=request.app[CLOCK].now()
    )
    return answer(assignment_json(address, result))


# --- search ------------------------------------------------------------------------------------


@routes.get("/console/api/search")
async def search(request: web.Request) -> web.Response:
    text = request.query.get("q", "").strip()[:200]
    if not text:
        return answer({"contacts": [], "messages": []})
    async with request.app[STORE].read() as tx:
        contacts = await tx.search.contacts(text, limit=10)
        messages = await tx.search.messages(text, limit=10)
    return answer(
        {
            "contacts": [contact_hit_json(hit) for hit in contacts],
            "messages": [message_hit_json(hit) for hit in messages],
        }
    )


# --- saved replies -----------------------------------------------------------------------------


@routes.get("/console/api/saved-replies")
async def saved_reply_list(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        replies = await tx.saved_replies.all()
    return answer({"saved_replies": [reply_json(r) for r in replies]})


async def _replies_page(
    request: web.Request, *, status: int = 200, error: str | None = None, form: dict[str, str]
) -> web.Response:
    async with request.app[STORE].read() as tx:
        replies: list[SavedReply] = await tx.saved_replies.all()
        names = {a.email: a.name for a in await tx.agents.all()}
    return render(
        request,
        "saved_replies.html",
        status=status,
        me=me(request),
        csrf_token=request[SESSION].csrf_token,
        replies=replies,
        names=names,
        error=error,
        form=form,
        admin=me(request).role is AgentRole.ADMIN,
    )


@routes.get("/console/saved-replies")
async def saved_replies_page(request: web.Request) -> web.Response:
    return await _replies_page(request, form={"shortcut": "", "text": ""})


@routes.post("/console/saved-replies")
async def save_reply(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    shortcut, text = str(form.get("shortcut", "")), str(form.get("text", ""))
    try:
        await saved_replies.save_reply_as(
            request.app[STORE], me(request).email, shortcut, text, now=request.app[CLOCK].now()
        )
    except DeskError as refusal:
        error = api_error(refusal)
        return await _replies_page(
            request,
            status=error.status,
            error=error.message,
            form={"shortcut": shortcut, "text": text},
        )
    raise web.HTTPSeeOther("/console/saved-replies")


@routes.post("/console/saved-replies/{shortcut}/delete")
async def delete_reply(request: web.Request) -> web.StreamResponse:
    try:
        await saved_replies.delete_reply_as(
            request.app[STORE], me(request).email, request.match_info["shortcut"]
        )
    except DeskError as refusal:
        error = api_error(refusal)
        return await _replies_page(
            request, status=error.status, error=error.message, form={"shortcut": "", "text": ""}
        )
    raise web.HTTPSeeOther("/console/saved-replies")


# --- who has what ------------------------------------------------------------------------------


@routes.get("/console/team")
async def team_page(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        loads = await assignment.workload(tx)
    return render(
        request,
        "team.html",
        me=me(request),
        csrf_token=request[SESSION].csrf_token,
        loads=loads,
    )

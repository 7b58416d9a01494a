"""REST: the desk's assignment (assign, resolve, reopen, who has what), private notes,
saved replies, and search over contacts and messages. Like the compose path, a body
names the acting agent by email."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.agents import assignment, notes, saved_replies
from engine.agents.desk_work_wire import (
    assignment_json,
    contact_hit_json,
    entry_json,
    message_hit_json,
    reply_json,
    workload_json,
)
from engine.contacts.directory import require_contact
from engine.web.addresses import contact_address
from engine.web.keys import CLOCK, STORE
from engine.web.validation import Body, Email, parse_body, parse_query

routes = web.RouteTableDef()

Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AssignBody(Body):
    agent: Email = Field(description="who assigns")
    to: Email = Field(description="who gets the conversation")
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


class ActingBody(Body):
    agent: Email


class NoteBody(Body):
    agent: Email
    text: Text


class SavedReplyBody(Body):
    agent: Email = Field(description="an admin")
    text: Text


class ActingQuery(Body):
    agent: Email


class SearchQuery(Body):
    q: SearchText
    limit: int = Field(default=20, ge=1, le=100)


@routes.post("/api/v1/conversations/{contact}/assign")
async def assign(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, AssignBody)
    result = await assignment.assign_as(
        request.app[STORE],
        address,
        body.agent,
        body.to,
        note=body.note,
        now=request.app[CLOCK].now(),
    )
    return web.json_response(assignment_json(address, result))


@routes.post("/api/v1/conversations/{contact}/resolve")
async def resolve(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, ActingBody)
    result = await assignment.resolve_as(
        request.app[STORE], address, body.agent, now=request.app[CLOCK].now()
    )
    return web.json_response(assignment_json(address, result))


@routes.post("/api/v1/conversations/{contact}/reopen")
async def reopen(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, ActingBody)
    result = await assignment.reopen_as(
        request.app[STORE], address, body.agent, now=request.app[CLOCK].now()
    )
    return web.json_response(assignment_json(address, result))


@routes.get("/api/v1/conversations/{contact}/notes")
async def list_notes(request: web.Request) -> web.Response:
    address = contact_address(request)
    async with request.app[STORE].read() as tx:
        contact = await require_contact(tx, address)
        entries = await tx.desk_log.entries(contact.id)
    return web.json_response({"entries": [entry_json(e) for e in entries]})


@routes.post("/api/v1/conversations/{contact}/notes")
async def add_note(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, NoteBody)
    entry = await notes.add_note_as(
        request.app[STORE], address, body.agent, body.text, now=request.app[CLOCK].now()
    )
    return web.json_response(entry_json(entry), status=201)


@routes.get("/api/v1/workload")
async def workload(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        loads = await assignment.workload(tx)
    return web.json_response({"agents": workload_json(loads)})


@routes.get("/api/v1/saved-replies")
async def list_saved_replies(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        replies = await tx.saved_replies.all()
    return web.json_response({"saved_replies": [reply_json(r) for r in replies]})


@routes.put("/api/v1/saved-replies/{shortcut}")
async def put_saved_reply(request: web.Request) -> web.Response:
    body = await parse_body(request, SavedReplyBody)
    reply = await saved_replies.save_reply_as(
        request.app[STORE],
        body.agent,
        request.match_info["shortcut"],
        body.text,
        now=request.app[CLOCK].now(),
    )
    return web.json_response(reply_json(reply))


@routes.delete("/api/v1/saved-replies/{shortcut}")
async def delete_saved_reply(request: web.Request) -> web.Response:
    query = parse_query(request, ActingQuery)
    await saved_replies.delete_reply_as(
        request.app[STORE], query.agent, request.match_info["shortcut"]
    )
    return web.Response(status=204)


@routes.get("/api/v1/search")
async def search(request: web.Request) -> web.Response:
    query = parse_query(request, SearchQuery)
    async with request.app[STORE].read() as tx:
        contacts = await tx.search.contacts(query.q, limit=query.limit)
        messages = await tx.search.messages(query.q, limit=query.limit)
    return web.json_response(
        {
            "contacts": [contact_hit_json(hit) for hit in contacts],
            "messages": [message_hit_json(hit) for hit in messages],
        }
    )

"""REST: sequences: create, edit, enrol (one contact, a CSV file,
everyone with a tag), unenrol, and an enrolment's record of every step: the requests
parsed, :mod:`engine.campaigns.sequence_control` asked, and its answers written as JSON."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from engine.campaigns import sequence_control as control
from engine.campaigns.enrol_csv import parse_numbers_csv
from engine.campaigns.sequence_control import EnrolmentRecord
from engine.contacts.csv_import import CsvFormatError
from engine.models.campaign import (
    EnrolmentState,
    MessageSequence,
)
from engine.web.addresses import contact_address
from engine.web.keys import CLOCK, SETTINGS, STORE
from engine.web.sequence_body import SequenceBody, TagBody
from engine.web.uploads import IMPORT_LIMIT_BYTES, invalid_csv, read_limited
from engine.web.validation import Body, ContactAddress, parse_body
from engine.web.wire import iso

routes = web.RouteTableDef()


class EnrolBody(Body):
    wa_id: ContactAddress


def sequence_json(sequence: MessageSequence) -> dict[str, Any]:
    definition = sequence.definition.model_dump(mode="json", exclude_none=True)
    return {
        "id": sequence.id,
        "name": sequence.name,
        "version": sequence.version,
        "steps": [{"index": index, **step} for index, step in enumerate(definition["steps"])],
        "send_window": definition.get("send_window"),
        "created_at": iso(sequence.created_at),
        "updated_at": iso(sequence.updated_at),
    }


def enrolment_json(found: EnrolmentRecord) -> dict[str, Any]:
    enrolment = found.enrolment
    active = enrolment.state is EnrolmentState.ACTIVE
    return {
        "id": enrolment.id,
        "sequence_id": found.sequence.id,
        "wa_id": found.contact.address,
        "state": enrolment.state.value,
        "source": enrolment.source,
        "current_step": enrolment.next_step if active else None,
        "enrolled_at": iso(enrolment.enrolled_at),
        "finished_at": iso(enrolment.finished_at) if enrolment.finished_at else None,
        "steps": [
            {
                "index": step.index,
                "status": step.status,
                "message_id": step.message_id,
                "failure": step.failure.model_dump() if step.failure else None,
                "due_at": iso(step.due_at) if step.due_at else None,
                "ran_at": iso(step.ran_at) if step.ran_at else None,
            }
            for step in found.steps
        ],
    }


@routes.post("/api/v1/sequences")
async def create_sequence(request: web.Request) -> web.Response:
    body = await parse_body(request, SequenceBody)
    sequence = await control.create_sequence(
        request.app[STORE],
        name=body.name,
        definition=body.definition(),
        now=request.app[CLOCK].now(),
    )
    return web.json_response(sequence_json(sequence), status=201)


@routes.get("/api/v1/sequences")
async def list_sequences(request: web.Request) -> web.Response:
    found = await control.sequences_by_name(request.app[STORE])
    return web.json_response({"sequences": [sequence_json(s) for s in found]})


@routes.get("/api/v1/sequences/{id}")
async def get_sequence(request: web.Request) -> web.Response:
    sequence = await control.find_sequence(request.app[STORE], request.match_info["id"])
    return web.json_response(sequence_json(sequence))


@routes.put("/api/v1/sequences/{id}")
async def edit_sequence(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    body = await parse_body(request, SequenceBody)
    sequence = await control.edit_sequence(
        request.app[STORE],
        sequence_id,
        name=body.name,
        definition=body.definition(),
        now=request.app[CLOCK].now(),
    )
    return web.json_response(sequence_json(sequence))


def _enrolled_json(done: control.Enrolled) -> dict[str, Any]:
    return {"enrolled": done.enrolled, "already_enrolled": done.already_enrolled}


@routes.post("/api/v1/sequences/{id}/enrollments/import")
async def enrol_csv(request: web.Request) -> web.Response:
    data = await read_limited(request, IMPORT_LIMIT_BYTES)
    try:
        parsed = await asyncio.to_thread(
            parse_numbers_csv, data, request.app[SETTINGS].default_region
        )
    except CsvFormatError as error:
        raise invalid_csv(error) from None
    done = await control.enrol_numbers(
        request.app[STORE], request.match_info["id"], parsed, now=request.app[CLOCK].now()
    )
    errors = [{"line": e.line, "message": e.message} for e in done.errors]
    return web.json_response({**_enrolled_json(done), "errors": errors})


@routes.post("/api/v1/sequences/{id}/enrollments/by-tag")
async def enrol_tag(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    body = await parse_body(request, TagBody)
    done = await control.enrol_tag(
        request.app[STORE], sequence_id, body.tag, now=request.app[CLOCK].now()
    )
    return web.json_response(_enrolled_json(done))


@routes.post("/api/v1/sequences/{id}/enrollments")
async def enrol_contact(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    body = await parse_body(request, EnrolBody)
    found = await control.enrol_contact(
        request.app[STORE], sequence_id, body.wa_id, now=request.app[CLOCK].now()
    )
    return web.json_response(enrolment_json(found), status=201)


@routes.get("/api/v1/sequences/{id}/enrollments/{contact}")
async def get_enrolment(request: web.Request) -> web.Response:
    address = contact_address(request)
    found = await control.enrolment_record(request.app[STORE], request.match_info["id"], address)
    return web.json_response(enrolment_json(found))


@routes.delete("/api/v1/sequences/{id}/enrollments/{contact}")
async def unenrol_contact(request: web.Request) -> web.Response:
    address = contact_address(request)
    found = await control.unenrol_contact(
        request.app[STORE], request.match_info["id"], address, now=request.app[CLOCK].now()
    )
    return web.json_response(enrolment_json(found))

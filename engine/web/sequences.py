"""REST: sequences: create, edit, enrol (one contact, a CSV file,
everyone with a tag), unenrol, and an enrolment's record of every step: the requests
parsed, :mod:`engine.campaigns.sequence_control` asked, and its answers written as JSON."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints, field_validator, model_validator

from engine.campaigns import sequence_control as control
from engine.campaigns.enrol_csv import parse_numbers_csv
from engine.campaigns.sequence_control import EnrolmentRecord
from engine.contacts.csv_import import MAX_TAG_LENGTH, CsvFormatError
from engine.flows.model import parse_duration
from engine.models.campaign import (
    EnrolmentState,
    MessageSequence,
    SendWindow,
    SequenceDefinition,
    SequenceStep,
)
from engine.models.message import TemplateRef
from engine.web.addresses import contact_address
from engine.web.keys import CLOCK, SETTINGS, STORE
from engine.web.messages import TemplateChoice, iso
from engine.web.uploads import IMPORT_LIMIT_BYTES, invalid_csv, read_limited
from engine.web.validation import Body, ContactAddress, parse_body

routes = web.RouteTableDef()

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_LENGTH)
]


class StepBody(Body):
    delay_seconds: float | None = Field(default=None, ge=0)
    delay: str | None = Field(default=None, description='e.g. "30s", "5m", "2h", "1d"')
    template: TemplateChoice | None = None
    text: str | None = Field(default=None, min_length=1, max_length=4096)

    @field_validator("delay")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            seconds = parse_duration(value)
            if seconds < 0:
                raise ValueError(f"{value!r} is negative")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> StepBody:
        if (self.delay_seconds is None) == (self.delay is None):
            raise ValueError("give exactly one of delay_seconds and delay")
        if (self.template is None) == (self.text is None):
            raise ValueError("give exactly one of template and text")
        return self

    def step(self) -> SequenceStep:
        seconds = self.delay_seconds if self.delay is None else parse_duration(self.delay)
        template = self.template
        return SequenceStep(
            delay_seconds=seconds,
            template=None
            if template is None
            else TemplateRef(
                name=template.name, language=template.language, params=tuple(template.params)
            ),
            text=self.text,
        )


class SequenceBody(Body):
    name: str = Field(min_length=1, max_length=200)
    steps: list[StepBody] = Field(min_length=1, max_length=100)
    send_window: SendWindow | None = Field(
        default=None, description='local hours, e.g. {"start": "09:00", "end": "18:00"}'
    )
    phone_number_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the business number to send from; default: the first registered",
    )

    def definition(self) -> SequenceDefinition:
        return SequenceDefinition(
            steps=tuple(step.step() for step in self.steps),
            send_window=self.send_window,
            phone_number_id=self.phone_number_id,
        )


class EnrolBody(Body):
    wa_id: ContactAddress


class TagBody(Body):
    tag: Tag


def sequence_json(sequence: MessageSequence) -> dict[str, Any]:
    definition = sequence.definition.model_dump(mode="json", exclude_none=True)
    return {
        "id": sequence.id,
        "name": sequence.name,
        "version": sequence.version,
        "steps": [{"index": index, **step} for index, step in enumerate(definition["steps"])],
        "send_window": definition.get("send_window"),
        "phone_number_id": definition.get("phone_number_id"),
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

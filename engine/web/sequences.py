"""REST: sequences: create, edit, enrol (one contact, a CSV file,
everyone with a tag), unenrol, and an enrolment's record of every step."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints, field_validator, model_validator

from engine.campaigns import sequences
from engine.campaigns.enrol_csv import parse_numbers_csv
from engine.campaigns.errors import AlreadyEnrolled, CampaignError
from engine.contacts.csv_import import MAX_TAG_LENGTH, CsvFormatError
from engine.contacts.directory import require_contact
from engine.flows.model import parse_duration
from engine.ids import new_id
from engine.models.campaign import (
    Enrolment,
    EnrolmentState,
    MessageSequence,
    SendWindow,
    SequenceDefinition,
    SequenceStep,
)
from engine.models.contact import Contact
from engine.models.message import TemplateRef
from engine.store import AlreadyExists, NotFound, Tx
from engine.store.campaign_work import WorkKind
from engine.web.addresses import contact_address
from engine.web.campaigns import campaign_error, invalid
from engine.web.errors import ApiError, not_found
from engine.web.keys import CLOCK, SETTINGS, STORE
from engine.web.messages import TemplateChoice, iso
from engine.web.uploads import IMPORT_LIMIT_BYTES, invalid_csv, read_limited
from engine.web.validation import Body, ContactAddress, parse_body

routes = web.RouteTableDef()

ENROL_BATCH = 500
"""Contacts enrolled per store transaction (CSV files and tags)."""

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

    def definition(self) -> SequenceDefinition:
        return SequenceDefinition(
            steps=tuple(step.step() for step in self.steps), send_window=self.send_window
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
        "created_at": iso(sequence.created_at),
        "updated_at": iso(sequence.updated_at),
    }


async def enrolment_json(
    tx: Tx, sequence: MessageSequence, enrolment: Enrolment, contact: Contact
) -> dict[str, Any]:
    """The enrolment and every step: what it did (status, message id, failure), or that
    it is still to come."""
    runs = {run.step_index: run for run in await tx.sequences.runs(enrolment.id)}
    timer = await tx.campaign_work.get(WorkKind.SEQUENCE_STEP, enrolment.id)
    active = enrolment.state is EnrolmentState.ACTIVE
    count = max(len(sequence.definition.steps), max(runs, default=-1) + 1)
    steps: list[dict[str, Any]] = []
    # A pending step is due its delay after the step before it was due (the timer says
    # when the next one fires).
    scheduled = enrolment.anchor_at
    for index in range(count):
        run = runs.get(index)
        if run is not None:
            steps.append(
                {
                    "index": index,
                    "status": run.status,
                    "message_id": run.message_id,
                    "failure": run.failure.model_dump() if run.failure else None,
                    "due_at": iso(run.due_at),
                    "ran_at": iso(run.ran_at),
                }
            )
            continue
        shown: datetime | None = None
        if active and enrolment.next_step <= index < len(sequence.definition.steps):
            scheduled = sequences.step_due(sequence, index, scheduled, contact)
            shown = scheduled
            if index == enrolment.next_step and timer is not None:
                shown = timer.due_at  # a step whose run failed is retried later
        steps.append(
            {
                "index": index,
                "status": "pending" if active else "cancelled",
                "message_id": None,
                "failure": None,
                "due_at": iso(shown) if shown else None,
                "ran_at": None,
            }
        )
    return {
        "id": enrolment.id,
        "sequence_id": sequence.id,
        "wa_id": contact.address,
        "state": enrolment.state.value,
        "source": enrolment.source,
        "current_step": enrolment.next_step if active else None,
        "enrolled_at": iso(enrolment.enrolled_at),
        "finished_at": iso(enrolment.finished_at) if enrolment.finished_at else None,
        "steps": steps,
    }


async def _require_sequence(tx: Tx, sequence_id: str) -> MessageSequence:
    sequence = await tx.sequences.get(sequence_id)
    if sequence is None:
        raise not_found(f"sequence {sequence_id}")
    return sequence


async def _check(tx: Tx, definition: SequenceDefinition) -> None:
    try:
        await sequences.check_definition(tx, definition)
    except CampaignError as error:
        raise campaign_error(error) from None


@routes.post("/api/v1/sequences")
async def create_sequence(request: web.Request) -> web.Response:
    body = await parse_body(request, SequenceBody)
    definition = body.definition()
    now = request.app[CLOCK].now()
    sequence = MessageSequence(
        id=new_id(),
        name=body.name,
        version=1,
        definition=definition,
        created_at=now,
        updated_at=now,
    )

    async def job(tx: Tx) -> None:
        await _check(tx, definition)
        await tx.sequences.create(sequence)

    try:
        await request.app[STORE].write(job)
    except AlreadyExists as error:
        raise ApiError(409, "sequence_exists", str(error)) from None
    return web.json_response(sequence_json(sequence), status=201)


@routes.get("/api/v1/sequences")
async def list_sequences(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        found = await tx.sequences.by_name()
    return web.json_response({"sequences": [sequence_json(s) for s in found]})


@routes.get("/api/v1/sequences/{id}")
async def get_sequence(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        sequence = await _require_sequence(tx, request.match_info["id"])
    return web.json_response(sequence_json(sequence))


@routes.put("/api/v1/sequences/{id}")
async def edit_sequence(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    body = await parse_body(request, SequenceBody)
    definition = body.definition()
    now = request.app[CLOCK].now()

    async def job(tx: Tx) -> MessageSequence:
        await _require_sequence(tx, sequence_id)
        await _check(tx, definition)
        return await sequences.edit(tx, sequence_id, name=body.name, definition=definition, now=now)

    try:
        sequence = await request.app[STORE].write(job)
    except AlreadyExists as error:
        raise ApiError(409, "sequence_exists", str(error)) from None
    except NotFound:
        raise not_found(f"sequence {sequence_id}") from None
    return web.json_response(sequence_json(sequence))


@routes.post("/api/v1/sequences/{id}/enrollments/import")
async def enrol_csv(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    data = await read_limited(request, IMPORT_LIMIT_BYTES)
    try:
        parsed = await asyncio.to_thread(
            parse_numbers_csv, data, request.app[SETTINGS].default_region
        )
    except CsvFormatError as error:
        raise invalid_csv(error) from None
    async with request.app[STORE].read() as tx:
        await _require_sequence(tx, sequence_id)
    now = request.app[CLOCK].now()
    errors: list[dict[str, Any]] = [{"line": e.line, "message": e.message} for e in parsed.errors]
    enrolled = already = 0
    for start in range(0, len(parsed.rows), ENROL_BATCH):
        chunk = parsed.rows[start : start + ENROL_BATCH]

        async def job(tx: Tx, chunk: list[tuple[int, str]] = chunk) -> tuple[int, int, list[Any]]:
            sequence = await _require_sequence(tx, sequence_id)
            done = known = 0
            unknown: list[dict[str, Any]] = []
            for line, wa_id in chunk:
                contact = await tx.contacts.get(wa_id)
                if contact is None:
                    unknown.append(
                        {"line": line, "message": f"there is no contact {wa_id}; import it first"}
                    )
                    continue
                try:
                    await sequences.enrol(tx, sequence, contact, source="csv", now=now)
                    done += 1
                except AlreadyEnrolled:
                    known += 1
            return done, known, unknown

        done, known, unknown = await request.app[STORE].write(job)
        enrolled, already = enrolled + done, already + known
        errors += unknown
    errors.sort(key=lambda error: int(error["line"]))
    return web.json_response({"enrolled": enrolled, "already_enrolled": already, "errors": errors})


@routes.post("/api/v1/sequences/{id}/enrollments/by-tag")
async def enrol_tag(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    body = await parse_body(request, TagBody)
    now = request.app[CLOCK].now()
    enrolled = already = 0
    after: int | None = None
    while True:

        async def job(tx: Tx, after: int | None = after) -> tuple[int, int, int | None]:
            sequence = await _require_sequence(tx, sequence_id)
            page = await tx.contacts.list(tag=body.tag, after_id=after, limit=ENROL_BATCH)
            if not page and after is None:
                raise invalid("tag", f"no contact has the tag {body.tag!r}")
            done = known = 0
            for contact in page:
                try:
                    await sequences.enrol(tx, sequence, contact, source="tag", now=now)
                    done += 1
                except AlreadyEnrolled:
                    known += 1
            return done, known, page[-1].id if len(page) == ENROL_BATCH else None

        done, known, after = await request.app[STORE].write(job)
        enrolled, already = enrolled + done, already + known
        if after is None:
            break
    return web.json_response({"enrolled": enrolled, "already_enrolled": already})


@routes.post("/api/v1/sequences/{id}/enrollments")
async def enrol_contact(request: web.Request) -> web.Response:
    sequence_id = request.match_info["id"]
    body = await parse_body(request, EnrolBody)
    now = request.app[CLOCK].now()

    async def job(tx: Tx) -> dict[str, Any]:
        sequence = await _require_sequence(tx, sequence_id)
        contact = await tx.contacts.get(body.wa_id)
        if contact is None:
            raise invalid(
                "wa_id", f"there is no contact {body.wa_id}; create it first (POST /contacts)"
            )
        enrolment = await sequences.enrol(tx, sequence, contact, source="api", now=now)
        return await enrolment_json(tx, sequence, enrolment, contact)

    try:
        document = await request.app[STORE].write(job)
    except CampaignError as error:
        raise campaign_error(error) from None
    return web.json_response(document, status=201)


@routes.get("/api/v1/sequences/{id}/enrollments/{contact}")
async def get_enrolment(request: web.Request) -> web.Response:
    address = contact_address(request)
    async with request.app[STORE].read() as tx:
        sequence = await _require_sequence(tx, request.match_info["id"])
        contact = await require_contact(tx, address)
        enrolment = await tx.sequences.latest_enrolment(sequence.id, contact.id)
        if enrolment is None:
            raise ApiError(404, "not_enrolled", f"{address} was never in sequence {sequence.name}")
        document = await enrolment_json(tx, sequence, enrolment, contact)
    return web.json_response(document)


@routes.delete("/api/v1/sequences/{id}/enrollments/{contact}")
async def unenrol_contact(request: web.Request) -> web.Response:
    address = contact_address(request)
    now: datetime = request.app[CLOCK].now()

    async def job(tx: Tx) -> dict[str, Any]:
        sequence = await _require_sequence(tx, request.match_info["id"])
        contact = await require_contact(tx, address)
        enrolment = await sequences.unenrol(tx, sequence, contact, now=now)
        return await enrolment_json(tx, sequence, enrolment, contact)

    try:
        document = await request.app[STORE].write(job)
    except CampaignError as error:
        raise campaign_error(error) from None
    return web.json_response(document)

"""The marketers' sequences: the list, the builder (ordered steps of a delay and a
template or a text, the send window; saving an edit makes a new version), enrolment by
tag or CSV upload, and each enrolment's record of every step.

A step with a MARKETING template says what the send rules do with it: a contact who
opted out fails that step and moves on to the next. The form is read into the REST
API's body and goes through :mod:`engine.campaigns.sequence_control`."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from engine.campaigns import sequence_control as control
from engine.campaigns.enrol_csv import parse_numbers_csv
from engine.campaigns.refusals import CampaignRefusal
from engine.contacts.csv_import import CsvFormatError
from engine.models.campaign import MessageSequence
from engine.models.template import Template, TemplateCategory
from engine.web.console.marketing.broadcasts import template_choices
from engine.web.console.marketing.common import (
    Form,
    FormErrors,
    marketing_page,
    refused,
    text,
    validate,
)
from engine.web.console.marketing.contacts import no_file, uploaded_file
from engine.web.error_answers import ApiError
from engine.web.keys import CLOCK, SETTINGS, STORE
from engine.web.sequence_body import SequenceBody, TagBody
from engine.web.uploads import invalid_csv

routes = web.RouteTableDef()

SECTION = "sequences"
MAX_STEPS = 20
ENROLMENTS_SHOWN = 100
OPTED_OUT_NOTE = (
    "MARKETING template: contacts who opted out of marketing will fail this step "
    "and move on to the next."
)


def duration_text(seconds: float) -> str:
    """A delay as the builder writes it.

    >>> duration_text(0), duration_text(90), duration_text(7200), duration_text(172800)
    ('0s', '90s', '2h', '2d')
    """
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def steps_of(form: Form) -> list[dict[str, str | list[str]]]:
    """The builder's rows as they were typed, blank rows dropped."""
    rows = []
    for index in range(MAX_STEPS):
        kind = text(form, f"step_{index}_kind")
        if not kind:
            continue
        row: dict[str, str | list[str]] = {
            "kind": kind,
            "delay": text(form, f"step_{index}_delay"),
            "template": text(form, f"step_{index}_template"),
            "text": text(form, f"step_{index}_text"),
            "params": [str(p) for p in form.getall(f"step_{index}_param", [])],
        }
        if row["delay"] or row["template"] or row["text"]:
            rows.append(row)
    return rows


def sequence_body(form: Form) -> dict[str, Any]:
    """The builder as the REST API's ``POST /sequences`` body."""
    steps: list[dict[str, Any]] = []
    for row in steps_of(form):
        step: dict[str, Any] = {"delay": row["delay"] or "0s"}
        if row["kind"] == "template":
            name, _, language = str(row["template"]).partition("|")
            step["template"] = {"name": name, "language": language, "params": row["params"]}
        else:
            step["text"] = row["text"]
        steps.append(step)
    body: dict[str, Any] = {"name": text(form, "name"), "steps": steps}
    start, end = text(form, "window_start"), text(form, "window_end")
    if start or end:
        body["send_window"] = {"start": start, "end": end}
    return body


def values_of(sequence: MessageSequence) -> dict[str, Any]:
    definition = sequence.definition
    window = definition.send_window
    return {
        "name": sequence.name,
        "window_start": window.start.strftime("%H:%M") if window else "",
        "window_end": window.end.strftime("%H:%M") if window else "",
        "steps": [
            {
                "kind": "template" if step.template else "text",
                "delay": duration_text(step.delay_seconds),
                "template": f"{step.template.name}|{step.template.language}"
                if step.template
                else "",
                "text": step.text or "",
                "params": list(step.template.params) if step.template else [],
            }
            for step in definition.steps
        ],
    }


def marketing_steps(sequence: MessageSequence, templates: list[Template]) -> set[int]:
    marketing = {
        (t.name, t.language) for t in templates if t.category is TemplateCategory.MARKETING
    }
    return {
        index
        for index, step in enumerate(sequence.definition.steps)
        if step.template and (step.template.name, step.template.language) in marketing
    }


async def _templates(request: web.Request) -> list[Template]:
    async with request.app[STORE].read() as tx:
        return await tx.templates.list()


@routes.get("/console/sequences")
async def list_page(request: web.Request) -> web.Response:
    found = await control.sequences_by_name(request.app[STORE])
    return marketing_page(request, "marketing/sequences.html", section=SECTION, sequences=found)


async def _builder(
    request: web.Request,
    *,
    sequence: MessageSequence | None,
    values: dict[str, Any],
    errors: FormErrors | None = None,
) -> web.Response:
    return marketing_page(
        request,
        "marketing/sequence_builder.html",
        section=SECTION,
        status=errors.status if errors else 200,
        sequence=sequence,
        values=values,
        errors=errors or FormErrors(),
        templates=template_choices(await _templates(request)),
        opted_out_note=OPTED_OUT_NOTE,
    )


@routes.get("/console/sequences/new")
async def new_page(request: web.Request) -> web.Response:
    values = {"name": "", "window_start": "", "window_end": "", "steps": []}
    return await _builder(request, sequence=None, values=values)


def _typed(form: Form) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "window_start": text(form, "window_start"),
        "window_end": text(form, "window_end"),
        "steps": steps_of(form),
    }


@routes.post("/console/sequences")
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        body = validate(request, SequenceBody, sequence_body(form))
        sequence = await control.create_sequence(
            request.app[STORE],
            name=body.name,
            definition=body.definition(),
            now=request.app[CLOCK].now(),
        )
    except ApiError as error:
        return await _builder(
            request, sequence=None, values=_typed(form), errors=FormErrors.of(error)
        )
    except CampaignRefusal as refusal:
        return await _builder(request, sequence=None, values=_typed(form), errors=refused(refusal))
    raise web.HTTPSeeOther(f"/console/sequences/{sequence.id}")


@routes.get("/console/sequences/{id}/edit")
async def edit_page(request: web.Request) -> web.Response:
    try:
        sequence = await control.find_sequence(request.app[STORE], request.match_info["id"])
    except CampaignRefusal as refusal:
        return _missing(request, refusal)
    return await _builder(request, sequence=sequence, values=values_of(sequence))


@routes.post("/console/sequences/{id}")
async def edit(request: web.Request) -> web.StreamResponse:
    sequence_id = request.match_info["id"]
    form = await request.post()
    try:
        sequence = await control.find_sequence(request.app[STORE], sequence_id)
    except CampaignRefusal as refusal:
        return _missing(request, refusal)
    try:
        body = validate(request, SequenceBody, sequence_body(form))
        await control.edit_sequence(
            request.app[STORE],
            sequence_id,
            name=body.name,
            definition=body.definition(),
            now=request.app[CLOCK].now(),
        )
    except ApiError as error:
        return await _builder(
            request, sequence=sequence, values=_typed(form), errors=FormErrors.of(error)
        )
    except CampaignRefusal as refusal:
        return await _builder(
            request, sequence=sequence, values=_typed(form), errors=refused(refusal)
        )
    raise web.HTTPSeeOther(f"/console/sequences/{sequence_id}")


def _missing(request: web.Request, refusal: CampaignRefusal) -> web.Response:
    failed = refused(refusal)
    return marketing_page(
        request,
        "marketing/missing.html",
        section=SECTION,
        status=failed.status,
        message=failed.summary,
    )


async def _sequence_page(
    request: web.Request,
    *,
    enrolled: control.Enrolled | None = None,
    errors: FormErrors | None = None,
    tag: str = "",
) -> web.Response:
    try:
        sequence, records = await control.newest_enrolments(
            request.app[STORE], request.match_info["id"], limit=ENROLMENTS_SHOWN
        )
    except CampaignRefusal as refusal:
        return _missing(request, refusal)
    templates = await _templates(request)
    return marketing_page(
        request,
        "marketing/sequence.html",
        section=SECTION,
        status=errors.status if errors else 200,
        sequence=sequence,
        marketing=marketing_steps(sequence, templates),
        records=records,
        enrolled=enrolled,
        errors=errors or FormErrors(),
        tag=tag,
        opted_out_note=OPTED_OUT_NOTE,
        duration=duration_text,
    )


@routes.get("/console/sequences/{id}")
async def sequence_page(request: web.Request) -> web.Response:
    return await _sequence_page(request)


@routes.post("/console/sequences/{id}/enrol/tag")
async def enrol_tag(request: web.Request) -> web.Response:
    form = await request.post()
    tag = text(form, "tag")
    try:
        body = validate(request, TagBody, {"tag": tag})
        done = await control.enrol_tag(
            request.app[STORE], request.match_info["id"], body.tag, now=request.app[CLOCK].now()
        )
    except ApiError as error:
        return await _sequence_page(request, errors=FormErrors.of(error), tag=tag)
    except CampaignRefusal as refusal:
        return await _sequence_page(request, errors=refused(refusal), tag=tag)
    return await _sequence_page(request, enrolled=done)


@routes.post("/console/sequences/{id}/enrol/csv")
async def enrol_csv(request: web.Request) -> web.Response:
    form = await request.post()
    data = uploaded_file(form)
    if not data:
        return await _sequence_page(request, errors=no_file())
    try:
        parsed = await asyncio.to_thread(
            parse_numbers_csv, data, request.app[SETTINGS].default_region
        )
        done = await control.enrol_numbers(
            request.app[STORE], request.match_info["id"], parsed, now=request.app[CLOCK].now()
        )
    except CsvFormatError as error:
        return await _sequence_page(request, errors=FormErrors.of(invalid_csv(error)))
    except CampaignRefusal as refusal:
        return await _sequence_page(request, errors=refused(refusal))
    return await _sequence_page(request, enrolled=done)

"""The marketers' broadcasts: the list with live progress, the "New broadcast" form
with its live count and the marketing opt-in checkbox, and a broadcast's page (counts,
pause, resume, cancel, the per-recipient report and its CSV).

The form is read into the REST API's request body and goes through the same use cases
(:mod:`engine.campaigns.broadcast_control`): the same refusals, named beside the field.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from engine.campaigns import broadcast_control as control
from engine.campaigns.refusals import CampaignRefusal
from engine.models.campaign import Broadcast
from engine.models.template import Template, TemplateCategory
from engine.web import broadcast_body as api
from engine.web.console.marketing.common import (
    Form,
    FormErrors,
    in_zone,
    lines_of,
    local_input,
    marketing_page,
    me,
    refused,
    text,
    validate,
)
from engine.web.console.render import SECURITY_HEADERS
from engine.web.error_answers import ApiError
from engine.web.keys import CLOCK, STORE
from engine.web.validation import read_json

routes = web.RouteTableDef()

SECTION = "broadcasts"
REPORT_ROWS = 200
"""Recipients shown on a broadcast's page; the CSV has them all."""
ATTRIBUTE_ROWS = 3
OPT_IN_LABEL = "Send message to contacts who opted-in for marketing"
ACKNOWLEDGE = "acknowledge"
ACKNOWLEDGE_MESSAGE = (
    "you turned off sending only to contacts who opted in: confirm that you understand "
    "the risk to the quality rating"
)


def friendly_name(template: Template) -> str:
    """How a marketer knows a template: ``spring_sale`` is "Spring sale"."""
    return template.name.replace("_", " ").capitalize()


def template_choices(templates: list[Template]) -> list[dict[str, Any]]:
    return [
        {
            "value": f"{t.name}|{t.language}",
            "label": f"{friendly_name(t)} ({t.language})",
            "category": t.category.value,
            "params": t.param_count,
            "body": t.body,
        }
        for t in sorted(templates, key=lambda t: (friendly_name(t), t.language))
    ]


def _scalar(value: str) -> Any:
    """An attribute filter's value: a number or true/false as JSON reads it, else text."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | float | bool) else value


def request_body(request: web.Request, form: Form, *, preview: bool) -> dict[str, Any]:
    """The form as the REST API's ``POST /broadcasts`` (or ``/preview``) body."""
    name, _, language = text(form, "template").partition("|")
    body: dict[str, Any] = {
        "template": {
            "name": name,
            "language": language,
            "params": [str(p) for p in form.getall("param", [])],
        },
        "opted_in_only": text(form, "opted_in_only") == "1",
    }
    if text(form, "audience") == "numbers":
        body["contacts"] = lines_of(text(form, "contacts"))
    else:
        body["tags"] = lines_of(text(form, "tags"))
        body["tags_match"] = text(form, "tags_match") or "any"
        attributes = []
        for row in range(ATTRIBUTE_ROWS):
            attribute = text(form, f"attribute_{row}")
            if not attribute:
                continue
            op, value = text(form, f"op_{row}") or "equals", text(form, f"value_{row}")
            if op == "exists":
                attributes.append({"attribute": attribute, "exists": True})
            elif op == "in":
                attributes.append(
                    {"attribute": attribute, "in": [_scalar(v) for v in lines_of(value)]}
                )
            else:
                attributes.append({"attribute": attribute, "equals": _scalar(value)})
        body["attributes"] = attributes
    if not preview:
        body["name"] = text(form, "name")
        if text(form, "when") == "later":
            body["send_at"] = local_input(request, text(form, "send_at")) or ""
    return body


async def _form_page(
    request: web.Request,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
) -> web.Response:
    async with request.app[STORE].read() as tx:
        templates = await tx.templates.list()
    values = values or {"form_key": secrets.token_urlsafe(16), "opted_in_only": "1"}
    return marketing_page(
        request,
        "marketing/broadcast_new.html",
        section=SECTION,
        status=errors.status if errors else 200,
        templates=template_choices(templates),
        values=values,
        errors=errors or FormErrors(),
        attribute_rows=range(ATTRIBUTE_ROWS),
        opt_in_label=OPT_IN_LABEL,
    )


def _values(form: Form) -> dict[str, Any]:
    values: dict[str, Any] = {key: text(form, key) for key in form if key != "csrf_token"}
    values["params"] = [str(p) for p in form.getall("param", [])]
    return values


@routes.get("/console/broadcasts")
async def list_page(request: web.Request) -> web.Response:
    store = request.app[STORE]
    found = await control.newest_broadcasts(store, before=None, limit=100)
    rows = []
    for broadcast in found:
        _, counts = await control.find_broadcast(store, broadcast.id)
        rows.append(progress_json(request, broadcast, counts))
    return marketing_page(request, "marketing/broadcasts.html", section=SECTION, rows=rows)


def progress_json(
    request: web.Request, broadcast: Broadcast, counts: dict[str, int]
) -> dict[str, Any]:
    """What the list and a broadcast's page show, and what the live stream sends."""
    folded = api.counts_json(counts)
    folded["queued"] += folded.pop("sending")
    done = sum(folded[s] for s in ("sent", "delivered", "read", "failed", "skipped"))
    expected = broadcast.total if broadcast.opted_in_only is False else broadcast.will_send
    expected = max(expected, broadcast.planned, 1)
    return {
        "id": broadcast.id,
        "name": broadcast.name,
        "state": broadcast.state.value,
        "template": broadcast.template.name,
        "category": broadcast.category.value,
        "opted_in_only": broadcast.opted_in_only,
        "send_at": in_zone(request, broadcast.send_at),
        "total": broadcast.total,
        "will_send": broadcast.will_send,
        "excluded_opted_out": broadcast.excluded_opted_out,
        "quality_risk": broadcast.quality_risk,
        "counts": folded,
        "percent": min(100, round(100 * done / expected)),
        "paused_by": broadcast.paused.by if broadcast.paused else None,
        "paused_reason": broadcast.paused.reason if broadcast.paused else None,
        "guard": broadcast.guard.value,
    }


@routes.get("/console/broadcasts/new")
async def new_page(request: web.Request) -> web.Response:
    return await _form_page(request)


@routes.post("/console/api/broadcasts/preview")
async def preview(request: web.Request) -> web.Response:
    """The live count beside the form: the API's preview, for the console's script."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    try:
        body = validate(request, api.BroadcastPreview, data)
        counted = await control.preview_broadcast(
            request.app[STORE], api.broadcast_request(body), now=request.app[CLOCK].now()
        )
    except CampaignRefusal as refusal:
        raise ApiError(**_error_args(refused(refusal))) from None
    result = counted.preview
    return web.json_response(
        {
            "category": counted.category.value,
            "opted_in_only": body.opted_in_only,
            "total": result.total,
            "opted_out": result.opted_out,
            "will_send": result.will_send,
            "excluded_opted_out": result.excluded_opted_out,
            "warnings": api.warnings_json(result),
        },
        headers=SECURITY_HEADERS,
    )


def _error_args(errors: FormErrors) -> dict[str, Any]:
    return {
        "status": errors.status,
        "code": "invalid_request",
        "message": errors.summary or "",
        "fields": errors.api_fields(),
    }


@routes.post("/console/broadcasts")
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = _values(form)
    store, now = request.app[STORE], request.app[CLOCK].now()
    try:
        body = validate(request, api.BroadcastCreate, request_body(request, form, preview=False))
        asked = api.broadcast_request(body)
        counted = await control.preview_broadcast(store, asked, now=now)
        if (
            counted.category is TemplateCategory.MARKETING
            and not body.opted_in_only
            and text(form, ACKNOWLEDGE) != "1"
        ):
            raise ApiError(
                422,
                "invalid_request",
                f"{ACKNOWLEDGE}: {ACKNOWLEDGE_MESSAGE}",
                fields=[{"field": ACKNOWLEDGE, "message": ACKNOWLEDGE_MESSAGE}],
            )
        broadcast = await control.create_broadcast(
            store,
            asked,
            name=body.name,
            send_at=body.send_at,
            now=now,
            idempotency_key=f"console:{me(request).id}:{text(form, 'form_key')}"
            if text(form, "form_key")
            else None,
        )
    except ApiError as error:
        return await _form_page(request, values=values, errors=FormErrors.of(error))
    except CampaignRefusal as refusal:
        return await _form_page(request, values=values, errors=refused(refusal))
    raise web.HTTPSeeOther(f"/console/broadcasts/{broadcast.id}")


@routes.get("/console/broadcasts/{id}")
async def broadcast_page(request: web.Request) -> web.Response:
    return await _broadcast_page(request)


async def _broadcast_page(request: web.Request, *, flash: str | None = None) -> web.Response:
    broadcast_id = request.match_info["id"]
    store = request.app[STORE]
    try:
        broadcast, counts = await control.find_broadcast(store, broadcast_id)
        rows = await control.report_page(store, broadcast_id, after=0, limit=REPORT_ROWS)
    except CampaignRefusal as refusal:
        errors = refused(refusal)
        return marketing_page(
            request,
            "marketing/missing.html",
            section=SECTION,
            status=errors.status,
            message=errors.summary,
        )
    return marketing_page(
        request,
        "marketing/broadcast.html",
        section=SECTION,
        status=409 if flash else 200,
        b=progress_json(request, broadcast, counts),
        broadcast=broadcast,
        rows=rows,
        more=len(rows) == REPORT_ROWS,
        flash=flash,
        in_zone=lambda moment: in_zone(request, moment),
    )


async def _act(request: web.Request, action: Any) -> web.StreamResponse:
    broadcast_id = request.match_info["id"]
    try:
        await action(request.app[STORE], broadcast_id, now=request.app[CLOCK].now())
    except CampaignRefusal as refusal:
        return await _broadcast_page(request, flash=refused(refusal).summary)
    raise web.HTTPSeeOther(f"/console/broadcasts/{broadcast_id}")


@routes.post("/console/broadcasts/{id}/pause")
async def pause(request: web.Request) -> web.StreamResponse:
    return await _act(request, control.pause_broadcast)


@routes.post("/console/broadcasts/{id}/resume")
async def resume(request: web.Request) -> web.StreamResponse:
    return await _act(request, control.resume_broadcast)


@routes.post("/console/broadcasts/{id}/cancel")
async def cancel(request: web.Request) -> web.StreamResponse:
    return await _act(request, control.cancel_broadcast)


@routes.get("/console/broadcasts/{id}/report.csv")
async def report_csv(request: web.Request) -> web.StreamResponse:
    """The whole per-recipient report, streamed as the API streams it."""
    broadcast_id = request.match_info["id"]
    try:
        await control.find_broadcast(request.app[STORE], broadcast_id)
    except CampaignRefusal as refusal:
        raise web.HTTPNotFound(text=refused(refusal).summary or "") from None
    return await api.stream_report_csv(request, broadcast_id)

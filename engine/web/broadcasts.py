"""REST: broadcasts: preview, create, progress, report, cancel,
pause and resume.

The request is checked and the audience counted (a read, page by page); creating
stores the broadcast and makes its planning due at ``send_at``. The campaign worker
plans it batch by batch and the sender sends it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.campaigns import broadcasts
from engine.campaigns.broadcasts import Preview
from engine.campaigns.errors import CampaignError
from engine.contacts.csv_import import MAX_TAG_LENGTH
from engine.models.campaign import AttributeCondition, AudienceSpec, Broadcast
from engine.models.content import TemplateContent
from engine.models.message import MessageStatus
from engine.models.template import TemplateCategory
from engine.outbound.enqueue import TemplateProblem
from engine.store import NotFound, Tx
from engine.store.broadcasts import RecipientRow
from engine.web.campaigns import campaign_error, invalid, template_error
from engine.web.errors import ApiError, not_found
from engine.web.keys import CLOCK, STORE
from engine.web.messages import TemplateChoice, UtcDatetime, csv_cells, iso
from engine.web.validation import Body, ContactAddress, parse_body, parse_query

routes = web.RouteTableDef()

SEND_AT_GRACE = timedelta(minutes=1)
"""A ``send_at`` this little in the past (clocks differ) means now."""
REPORT_PAGE = 1000
COUNTED = ("queued", "sending", "sent", "delivered", "read", "failed", "skipped")
CSV_COLUMNS = (
    "to",
    "message_id",
    "status",
    "failure_code",
    "failure_reason",
    "wamid",
    "updated_at",
)
AUDIENCE_FIELDS = ("contacts", "tags", "attributes")

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_LENGTH)
]


class BroadcastPreview(Body):
    template: TemplateChoice
    contacts: list[ContactAddress] = Field(default_factory=list, description="wa_ids, any form")
    tags: list[Tag] = Field(default_factory=list)
    tags_match: Literal["any", "all"] = "any"
    attributes: list[AttributeCondition] = Field(default_factory=list)
    opted_in_only: bool = True


class BroadcastCreate(BroadcastPreview):
    name: str = Field(min_length=1, max_length=200)
    send_at: UtcDatetime | None = None


class ListQuery(Body):
    before: str | None = Field(default=None, description="the next_before of the previous page")
    limit: int = Field(default=100, ge=1, le=1000)


class ReportQuery(Body):
    format: Literal["json", "csv"] = "json"
    after: int | None = Field(default=None, ge=0, description="next_after of the previous page")
    limit: int = Field(default=REPORT_PAGE, ge=1, le=10_000)


def warnings_json(counted: Preview) -> list[dict[str, Any]]:
    return [
        {"code": warning.code, "count": warning.count, "message": warning.message}
        for warning in counted.warnings
    ]


def counts_json(counts: dict[str, int]) -> dict[str, int]:
    folded = {status: counts.get(status, 0) for status in COUNTED}
    folded["read"] += counts.get(MessageStatus.PLAYED.value, 0)
    return folded


def broadcast_json(broadcast: Broadcast, counts: dict[str, int] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": broadcast.id,
        "name": broadcast.name,
        "state": broadcast.state.value,
        "template": broadcast.template.model_dump(mode="json"),
        "category": broadcast.category.value,
        "audience": broadcast.audience.model_dump(mode="json", by_alias=True, exclude_none=True),
        "opted_in_only": broadcast.opted_in_only,
        "send_at": iso(broadcast.send_at),
        "total": broadcast.total,
        "will_send": broadcast.will_send,
        "excluded_opted_out": broadcast.excluded_opted_out,
        "warnings": warnings_json(Preview(quality_risk=broadcast.quality_risk)),
        "planned": broadcast.planned,
        "planning_done": broadcast.planning_done,
        "guard": broadcast.guard.value,
        "paused": None
        if broadcast.paused is None
        else {
            "by": broadcast.paused.by,
            "reason": broadcast.paused.reason,
            "at": iso(broadcast.paused.at),
        },
        "created_at": iso(broadcast.created_at),
        "updated_at": iso(broadcast.updated_at),
        "finished_at": iso(broadcast.finished_at) if broadcast.finished_at else None,
    }
    if counts is not None:
        document["counts"] = counts_json(counts)
    return document


def recipient_json(row: RecipientRow) -> dict[str, Any]:
    return {
        "to": row.to,
        "message_id": row.message_id,
        "status": row.status.value,
        "failure": row.failure.model_dump() if row.failure else None,
        "wamid": row.wamid,
        "updated_at": iso(row.updated_at),
    }


def recipient_csv(row: RecipientRow) -> list[Any]:
    return csv_cells(recipient_json(row), CSV_COLUMNS)


def _audience(body: BroadcastPreview) -> AudienceSpec:
    if not (body.contacts or body.tags or body.attributes):
        message = "give contacts, tags or attributes: the audience is empty"
        raise ApiError(
            422,
            "invalid_request",
            message,
            fields=[{"field": field, "message": message} for field in AUDIENCE_FIELDS],
        )
    return AudienceSpec(
        contacts=len(set(body.contacts)),
        tags=tuple(sorted(set(body.tags))),
        tags_match=body.tags_match,
        attributes=tuple(body.attributes),
    )


async def _count(
    tx: Tx, body: BroadcastPreview, *, now: datetime, check_numbers: bool
) -> tuple[AudienceSpec, tuple[int, ...], TemplateCategory, Preview]:
    """The audience checked and counted; a 422 naming the field when something is wrong."""
    spec = _audience(body)
    contact_ids: tuple[int, ...] = ()
    if body.contacts:
        known = await tx.broadcasts.contact_ids(sorted(set(body.contacts)))
        for index, wa_id in enumerate(body.contacts):
            if wa_id not in known:
                raise invalid(
                    f"contacts.{index}",
                    f"there is no contact {wa_id}; create or import it first",
                )
        contact_ids = tuple(sorted(set(known.values())))
    template = body.template
    content = TemplateContent(
        name=template.name, language=template.language, params=tuple(template.params)
    )
    try:
        category, counted = await broadcasts.preview(
            tx,
            content,
            broadcasts.audience_query(spec, contact_ids if body.contacts else None),
            opted_in_only=body.opted_in_only,
            now=now,
            check_numbers=check_numbers,
        )
    except TemplateProblem as problem:
        raise template_error(problem) from None
    if not counted.total:
        given = [field for field in AUDIENCE_FIELDS if getattr(body, field)]
        message = "no contact matches the audience"
        raise ApiError(
            422,
            "invalid_request",
            f"{', '.join(given)}: {message}",
            fields=[{"field": field, "message": message} for field in given],
        )
    return spec, contact_ids, category, counted


@routes.post("/api/v1/broadcasts/preview")
async def preview_broadcast(request: web.Request) -> web.Response:
    body = await parse_body(request, BroadcastPreview)
    now = request.app[CLOCK].now()
    async with request.app[STORE].read() as tx:
        _, _, category, counted = await _count(tx, body, now=now, check_numbers=True)
    return web.json_response(
        {
            "template": body.template.model_dump(mode="json"),
            "category": category.value,
            "opted_in_only": body.opted_in_only,
            "total": counted.total,
            "opted_out": counted.opted_out,
            "will_send": counted.will_send,
            "excluded_opted_out": counted.excluded_opted_out,
            "needs_template": counted.needs_template,
            "without_valid_number": counted.without_valid_number,
            "warnings": warnings_json(counted),
        }
    )


@routes.post("/api/v1/broadcasts")
async def create_broadcast(request: web.Request) -> web.Response:
    body = await parse_body(request, BroadcastCreate)
    now = request.app[CLOCK].now()
    if body.send_at is not None and body.send_at < now - SEND_AT_GRACE:
        raise invalid("send_at", f"{iso(body.send_at)} is in the past (now is {iso(now)})")
    send_at = max(body.send_at or now, now)
    async with request.app[STORE].read() as tx:
        spec, contact_ids, category, counted = await _count(tx, body, now=now, check_numbers=False)
    template = body.template
    broadcast = await request.app[STORE].write(
        partial(
            broadcasts.create,
            name=body.name,
            content=TemplateContent(
                name=template.name, language=template.language, params=tuple(template.params)
            ),
            category=category,
            audience=spec,
            contact_ids=contact_ids,
            opted_in_only=body.opted_in_only,
            send_at=send_at,
            counted=counted,
            now=now,
        )
    )
    return web.json_response(broadcast_json(broadcast), status=201)


@routes.get("/api/v1/broadcasts")
async def list_broadcasts(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    async with request.app[STORE].read() as tx:
        found = await tx.broadcasts.newest(before=query.before, limit=query.limit)
    return web.json_response(
        {
            "broadcasts": [broadcast_json(b) for b in found],
            "next_before": found[-1].id if len(found) == query.limit else None,
        }
    )


@routes.get("/api/v1/broadcasts/{id}")
async def get_broadcast(request: web.Request) -> web.Response:
    broadcast_id = request.match_info["id"]
    async with request.app[STORE].read() as tx:
        broadcast = await tx.broadcasts.get(broadcast_id)
        counts = await tx.broadcasts.counts(broadcast_id)
    if broadcast is None:
        raise not_found(f"broadcast {broadcast_id}")
    return web.json_response(broadcast_json(broadcast, counts))


@routes.get("/api/v1/broadcasts/{id}/report")
async def broadcast_report(request: web.Request) -> web.StreamResponse:
    broadcast_id = request.match_info["id"]
    query = parse_query(request, ReportQuery)
    store = request.app[STORE]
    async with store.read() as tx:
        broadcast = await tx.broadcasts.get(broadcast_id)
        rows = await tx.broadcasts.report(
            broadcast_id, after_contact=query.after or 0, limit=query.limit
        )
    if broadcast is None:
        raise not_found(f"broadcast {broadcast_id}")
    if query.format == "json":
        return web.json_response(
            {
                "rows": [recipient_json(row) for row in rows],
                "next_after": rows[-1].contact_id if len(rows) == query.limit else None,
            }
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="broadcast-{broadcast_id}.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    # The whole report, page by page, so a large one never sits in memory.
    after = query.after or 0
    while True:
        async with store.read() as tx:
            rows = await tx.broadcasts.report(broadcast_id, after_contact=after, limit=REPORT_PAGE)
        for row in rows:
            writer.writerow(recipient_csv(row))
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < REPORT_PAGE:
            break
        after = rows[-1].contact_id
    await response.write_eof()
    return response


async def _change(
    request: web.Request, change: Any, then: Callable[[str, datetime], Awaitable[None]]
) -> web.Response:
    """Change a broadcast's state in one job, then ``then`` its queued messages, a chunk
    per job (a broadcast may have a hundred thousand)."""
    broadcast_id = request.match_info["id"]
    store, now = request.app[STORE], request.app[CLOCK].now()
    try:
        await store.write(partial(change, broadcast_id=broadcast_id, now=now))
    except NotFound:
        raise not_found(f"broadcast {broadcast_id}") from None
    except CampaignError as error:
        raise campaign_error(error) from None
    await then(broadcast_id, now)
    async with store.read() as tx:
        broadcast = await tx.broadcasts.get(broadcast_id)
        counts = await tx.broadcasts.counts(broadcast_id)
    assert broadcast is not None
    return web.json_response(broadcast_json(broadcast, counts))


@routes.post("/api/v1/broadcasts/{id}/cancel")
async def cancel_broadcast(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return await _change(request, broadcasts.cancel, partial(broadcasts.skip_queued, store))


@routes.post("/api/v1/broadcasts/{id}/pause")
async def pause_broadcast(request: web.Request) -> web.Response:
    store = request.app[STORE]

    async def hold(broadcast_id: str, now: datetime) -> None:
        await broadcasts.hold_queued(store, broadcast_id)

    return await _change(
        request,
        partial(broadcasts.pause, by="api", reason="Paused through the API; resume it to go on."),
        hold,
    )


@routes.post("/api/v1/broadcasts/{id}/resume")
async def resume_broadcast(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return await _change(request, broadcasts.resume, partial(broadcasts.release_held, store))

"""REST: broadcasts: preview, create, progress, report, cancel,
pause and resume: the requests parsed, :mod:`engine.campaigns.broadcast_control`
asked, and its answers written as JSON (or a report as CSV).
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from engine.campaigns import broadcast_control as control
from engine.campaigns.broadcasts import Preview
from engine.models.campaign import Broadcast
from engine.web.billing import billing_json
from engine.web.broadcast_body import (
    BroadcastCreate,
    BroadcastPreview,
    broadcast_request,
    counts_json,
    recipient_json,
    stream_report_csv,
    warnings_json,
)
from engine.web.keys import CLOCK, STORE
from engine.web.validation import Body, parse_body, parse_query
from engine.web.wire import iso

routes = web.RouteTableDef()


class ListQuery(Body):
    before: str | None = Field(default=None, description="the next_before of the previous page")
    limit: int = Field(default=100, ge=1, le=1000)


class ReportQuery(Body):
    format: Literal["json", "csv"] = "json"
    after: int | None = Field(default=None, ge=0, description="next_after of the previous page")
    limit: int = Field(default=control.REPORT_PAGE, ge=1, le=10_000)


def broadcast_json(broadcast: Broadcast, counts: dict[str, int] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": broadcast.id,
        "name": broadcast.name,
        "state": broadcast.state.value,
        "template": broadcast.template.model_dump(mode="json"),
        "category": broadcast.category.value,
        "audience": broadcast.audience.model_dump(mode="json", by_alias=True, exclude_none=True),
        "opted_in_only": broadcast.opted_in_only,
        "phone_number_id": broadcast.phone_number_id,
        **({"quiet_hours": broadcast.quiet_hours} if broadcast.own_quiet_hours else {}),
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


def _broadcast_answer(found: tuple[Broadcast, dict[str, int]]) -> web.Response:
    return web.json_response(broadcast_json(*found))


@routes.post("/api/v1/broadcasts/preview")
async def preview_broadcast(request: web.Request) -> web.Response:
    body = await parse_body(request, BroadcastPreview)
    counted = await control.preview_broadcast(
        request.app[STORE], broadcast_request(body), now=request.app[CLOCK].now()
    )
    preview = counted.preview
    return web.json_response(
        {
            "template": body.template.model_dump(mode="json"),
            "category": counted.category.value,
            "opted_in_only": body.opted_in_only,
            "total": preview.total,
            "opted_out": preview.opted_out,
            "will_send": preview.will_send,
            "excluded_opted_out": preview.excluded_opted_out,
            "needs_template": preview.needs_template,
            "without_valid_number": preview.without_valid_number,
            "warnings": warnings_json(preview),
        }
    )


@routes.post("/api/v1/broadcasts")
async def create_broadcast(request: web.Request) -> web.Response:
    body = await parse_body(request, BroadcastCreate)
    broadcast = await control.create_broadcast(
        request.app[STORE],
        broadcast_request(body),
        name=body.name,
        send_at=body.send_at,
        now=request.app[CLOCK].now(),
    )
    return web.json_response(broadcast_json(broadcast), status=201)


@routes.get("/api/v1/broadcasts")
async def list_broadcasts(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    found = await control.newest_broadcasts(
        request.app[STORE], before=query.before, limit=query.limit
    )
    return web.json_response(
        {
            "broadcasts": [broadcast_json(b) for b in found],
            "next_before": found[-1].id if len(found) == query.limit else None,
        }
    )


@routes.get("/api/v1/broadcasts/{id}")
async def get_broadcast(request: web.Request) -> web.Response:
    store, broadcast_id = request.app[STORE], request.match_info["id"]
    document = broadcast_json(*await control.find_broadcast(store, broadcast_id))
    document["billing"] = billing_json(await control.broadcast_billing(store, broadcast_id))
    return web.json_response(document)


@routes.get("/api/v1/broadcasts/{id}/report")
async def broadcast_report(request: web.Request) -> web.StreamResponse:
    broadcast_id = request.match_info["id"]
    query = parse_query(request, ReportQuery)
    store = request.app[STORE]
    rows = await control.report_page(store, broadcast_id, after=query.after or 0, limit=query.limit)
    if query.format == "json":
        return web.json_response(
            {
                "rows": [recipient_json(row) for row in rows],
                "next_after": rows[-1].contact_id if len(rows) == query.limit else None,
                "billing": billing_json(await control.broadcast_billing(store, broadcast_id)),
            }
        )
    return await stream_report_csv(request, broadcast_id, after=query.after or 0)


@routes.post("/api/v1/broadcasts/{id}/cancel")
async def cancel_broadcast(request: web.Request) -> web.Response:
    return _broadcast_answer(
        await control.cancel_broadcast(
            request.app[STORE], request.match_info["id"], now=request.app[CLOCK].now()
        )
    )


@routes.post("/api/v1/broadcasts/{id}/pause")
async def pause_broadcast(request: web.Request) -> web.Response:
    return _broadcast_answer(
        await control.pause_broadcast(
            request.app[STORE], request.match_info["id"], now=request.app[CLOCK].now()
        )
    )


@routes.post("/api/v1/broadcasts/{id}/resume")
async def resume_broadcast(request: web.Request) -> web.Response:
    return _broadcast_answer(
        await control.resume_broadcast(
            request.app[STORE], request.match_info["id"], now=request.app[CLOCK].now()
        )
    )

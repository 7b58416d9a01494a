"""The marketers' reports: outbound messages by channel, status and failure code over
a time range (times in the business's zone), each row with its failure reason; how
many are in each status; a summary of failures by reason (``marketing_opt_out``,
``131049``, ...); and the whole report as a streamed CSV, as the REST API writes it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.models.message import Channel, MessageStatus
from engine.store.messages import MessageFilter
from engine.web.console.marketing.common import FormErrors, local_input, marketing_page
from engine.web.error_answers import ApiError
from engine.web.keys import STORE
from engine.web.message_report import ReportQuery, stream_messages_csv
from engine.web.validation import parse_query

routes = web.RouteTableDef()

SECTION = "reports"
ROWS_SHOWN = 200
FIELDS = ("channel", "status", "failure_code", "since", "until")


def _filter(request: web.Request) -> MessageFilter:
    """The page's filters read as ``GET /reports/messages`` reads its query (``since``
    and ``until`` are the business's wall clock); a 422 ApiError naming the field."""
    asked = {name: request.query.get(name, "").strip() for name in FIELDS}
    query: dict[str, str] = {}
    for name in ("channel", "status"):
        if asked[name]:
            query[name] = asked[name]
    for name in ("since", "until"):
        moment = local_input(request, asked[name])
        if moment:
            query[name] = moment
    code = asked["failure_code"]
    if len(code) > 64:
        message = "at most 64 characters"
        raise ApiError(
            422,
            "invalid_request",
            f"failure_code: {message}",
            fields=[{"field": "failure_code", "message": message}],
        )
    parsed = parse_query(request.clone(rel_url=request.rel_url.with_query(query)), ReportQuery)
    return MessageFilter(
        channel=parsed.channel,
        status=parsed.status,
        since=parsed.since,
        until=parsed.until,
        failure_code=code or None,
        limit=ROWS_SHOWN,
    )


@routes.get("/console/reports")
async def report_page(request: web.Request) -> web.Response:
    values = {name: request.query.get(name, "") for name in FIELDS}
    context: dict[str, Any] = {
        "values": values,
        "channels": [c.value for c in Channel],
        "statuses": [s.value for s in MessageStatus],
        "rows": [],
        "counts": {},
        "failures": [],
        "csv_query": request.rel_url.query_string,
    }
    try:
        where = _filter(request)
    except ApiError as error:
        failed = FormErrors.of(error)
        return marketing_page(
            request,
            "marketing/reports.html",
            section=SECTION,
            status=failed.status,
            errors=failed,
            **context,
        )
    async with request.app[STORE].read() as tx:
        context["rows"] = await tx.outbox.report(where)
        context["counts"] = await tx.outbox.report_counts(where)
        context["failures"] = await tx.outbox.failure_summary(where)
    context["more"] = len(context["rows"]) == ROWS_SHOWN
    return marketing_page(
        request, "marketing/reports.html", section=SECTION, errors=FormErrors(), **context
    )


@routes.get("/console/reports/messages.csv")
async def report_csv(request: web.Request) -> web.StreamResponse:
    try:
        where = _filter(request)
    except ApiError as error:
        raise web.HTTPUnprocessableEntity(text=error.message) from None
    return await stream_messages_csv(request, where)

"""The messages report (``GET /reports/messages``) as the REST API and the console's
reports page read and write it: the query, a row as JSON, and the whole report as a
CSV written a page at a time."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from engine.models.message import Channel, MessageStatus
from engine.store.messages import MessageFilter
from engine.store.outbox import ReportRow
from engine.web.keys import STORE
from engine.web.validation import Body
from engine.web.wire import UtcDatetime, csv_cells, iso

REPORT_PAGE = 1000


CSV_COLUMNS = (
    "id",
    "to",
    "channel",
    "template",
    "template_language",
    "status",
    "failure_code",
    "failure_reason",
    "attempts",
    "ambiguous_attempts",
    "wamid",
    "created_at",
    "updated_at",
)


class ReportQuery(Body):
    channel: Channel | None = None
    status: MessageStatus | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    format: Literal["json", "csv"] = "json"
    after: str | None = Field(default=None, description="the next_after of the previous page")
    limit: int = Field(default=REPORT_PAGE, ge=1, le=10_000)


def report_json(row: ReportRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "to": row.to,
        "channel": row.channel.value if row.channel else None,
        "template": row.template.name if row.template else None,
        "template_language": row.template.language if row.template else None,
        "status": row.status.value,
        "failure": row.failure.model_dump() if row.failure else None,
        "attempts": row.attempts,
        "ambiguous_attempts": row.ambiguous_attempts,
        "wamid": row.wamid,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def report_csv_row(row: ReportRow) -> list[Any]:
    return csv_cells(report_json(row), CSV_COLUMNS)


async def stream_messages_csv(request: web.Request, where: MessageFilter) -> web.StreamResponse:
    """The report of ``where`` as CSV, written a page at a time."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="messages.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    page = replace(where, limit=REPORT_PAGE)
    # The CSV is the whole report, read page by page so a large one never sits in memory.
    while True:
        async with request.app[STORE].read() as tx:
            rows = await tx.outbox.report(page)
        for row in rows:
            writer.writerow(report_csv_row(row))
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < REPORT_PAGE:
            break
        page = replace(page, after_id=rows[-1].id)
    await response.write_eof()
    return response

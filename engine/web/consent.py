"""REST: the consent ledger exported, streamed a page at a time (CSV or JSON lines)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from engine.contacts.ledger import EXPORT_FIELDS, export_record, ledger_entries
from engine.web.keys import STORE
from engine.web.validation import Body, parse_query

routes = web.RouteTableDef()

_CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
_FLUSH_ROWS = 500


class ExportQuery(Body):
    format: Literal["csv", "jsonl"] = Field(default="jsonl")
    since: datetime | None = Field(default=None, description="events at or after this time")


def _csv_cell(value: object) -> object:
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


@routes.get("/api/v1/consent/export")
async def export_consent(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, ExportQuery)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{_CONTENT_TYPES[query.format]}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="consent-ledger.{query.format}"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if query.format == "csv":
        writer.writerow(EXPORT_FIELDS)
    rows = 0
    async for entry in ledger_entries(request.app[STORE], since=query.since):
        record = export_record(entry)
        if query.format == "csv":
            writer.writerow([_csv_cell(record[field]) for field in EXPORT_FIELDS])
        else:
            buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
        rows += 1
        if rows % _FLUSH_ROWS == 0:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response

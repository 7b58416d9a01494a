"""Broadcasts as the REST API and the console both take and show them: the preview and
create bodies, the counts by status, and a broadcast's report as CSV."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, field_validator

from engine.campaigns import broadcast_control as control
from engine.campaigns.broadcast_control import BroadcastRequest
from engine.campaigns.broadcasts import Preview
from engine.models.campaign import AttributeCondition
from engine.models.content import TemplateContent
from engine.models.marketing_limits import QuietHours
from engine.models.message import MessageStatus
from engine.store.broadcasts import RecipientRow
from engine.web.keys import STORE
from engine.web.validation import Body, ContactAddress, Tag
from engine.web.wire import TemplateChoice, UtcDatetime, csv_cells, iso

COUNTED = ("queued", "sending", "sent", "delivered", "read", "failed", "skipped", "deferred")


CSV_COLUMNS = (
    "to",
    "message_id",
    "status",
    "failure_code",
    "failure_reason",
    "wamid",
    "updated_at",
)


class BroadcastPreview(Body):
    template: TemplateChoice
    contacts: list[ContactAddress] = Field(default_factory=list, description="wa_ids, any form")
    tags: list[Tag] = Field(default_factory=list)
    tags_match: Literal["any", "all"] = "any"
    attributes: list[AttributeCondition] = Field(default_factory=list)
    opted_in_only: bool = True
    phone_number_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the business number to send from; default: the first registered",
    )


class BroadcastCreate(BroadcastPreview):
    name: str = Field(min_length=1, max_length=200)
    send_at: UtcDatetime | None = None
    quiet_hours: str | None = Field(
        default=None,
        description="its own quiet hours (HH:MM-HH:MM) instead of MARKETING_QUIET_HOURS; "
        "null: none; omitted: the setting",
    )

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        return None if value is None else str(QuietHours.parse(value))

    def own_quiet_hours(self) -> QuietHours | Literal["setting"] | None:
        if "quiet_hours" not in self.model_fields_set:
            return "setting"
        return QuietHours.parse(self.quiet_hours) if self.quiet_hours else None


def warnings_json(counted: Preview) -> list[dict[str, Any]]:
    return [
        {"code": warning.code, "count": warning.count, "message": warning.message}
        for warning in counted.warnings
    ]


def counts_json(counts: dict[str, int]) -> dict[str, int]:
    folded = {status: counts.get(status, 0) for status in COUNTED}
    folded["read"] += counts.get(MessageStatus.PLAYED.value, 0)
    return folded


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


def broadcast_request(body: BroadcastPreview) -> BroadcastRequest:
    template = body.template
    return BroadcastRequest(
        template=TemplateContent(
            name=template.name, language=template.language, params=tuple(template.params)
        ),
        contacts=body.contacts,
        tags=body.tags,
        tags_match=body.tags_match,
        attributes=body.attributes,
        opted_in_only=body.opted_in_only,
        phone_number_id=body.phone_number_id,
        quiet_hours=body.own_quiet_hours() if isinstance(body, BroadcastCreate) else "setting",
    )


async def stream_report_csv(
    request: web.Request, broadcast_id: str, *, after: int = 0
) -> web.StreamResponse:
    """The report of a broadcast known to exist as CSV, written a page at a time."""
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
    async for page in control.report_pages(request.app[STORE], broadcast_id, after=after):
        for row in page:
            writer.writerow(recipient_csv(row))
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
    await response.write_eof()
    return response

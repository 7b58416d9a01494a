"""REST: contacts, their consent ledger, and CSV import."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from engine.contacts import directory
from engine.contacts.csv_import import CsvFormatError, parse_contacts_csv
from engine.models.contact import ConsentSource, Contact, opt_in_of_new_contact
from engine.store.contacts import Consent, NewContact
from engine.web.addresses import contact_address
from engine.web.contact_body import ContactCreate, ContactPatch
from engine.web.keys import SETTINGS, STORE
from engine.web.uploads import IMPORT_LIMIT_BYTES, invalid_csv, read_limited
from engine.web.validation import Body, parse_body, parse_query

routes = web.RouteTableDef()


class ContactQuery(Body):
    tag: str | None = None
    after: int | None = Field(default=None, ge=0, description="the last id of the previous page")
    limit: int = Field(default=100, ge=1, le=1000)


def contact_json(contact: Contact) -> dict[str, Any]:
    return contact.model_dump(mode="json")


@routes.post("/api/v1/contacts")
async def create_contact(request: web.Request) -> web.Response:
    body = await parse_body(request, ContactCreate)
    opt_in = body.marketing_opt_in
    new = NewContact(
        wa_id=body.wa_id,
        user_id=body.user_id,
        name=body.name,
        marketing_opt_in=opt_in_of_new_contact(
            opt_in, default=request.app[SETTINGS].default_marketing_opt_in
        ),
        attributes=body.attributes,
        tags=sorted(set(body.tags)),
    )
    consent = Consent(ConsentSource.API, actor="api")
    contact = await directory.create_contact(request.app[STORE], new, consent)
    return web.json_response(contact_json(contact), status=201)


@routes.get("/api/v1/contacts")
async def list_contacts(request: web.Request) -> web.Response:
    query = parse_query(request, ContactQuery)
    async with request.app[STORE].read() as tx:
        contacts = await tx.contacts.list(tag=query.tag, after_id=query.after, limit=query.limit)
    page = [contact_json(contact) for contact in contacts]
    after = contacts[-1].id if len(contacts) == query.limit else None
    return web.json_response({"contacts": page, "next_after": after})


class ExportQuery(Body):
    format: Literal["csv"] = "csv"
    tag: str | None = None


EXPORT_PAGE = 1000
EXPORT_COLUMNS = (
    "id",
    "wa_id",
    "user_id",
    "name",
    "marketing_opt_in",
    "tags",
    "created_at",
    "updated_at",
)


def _export_line(values: list[Any]) -> bytes:
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n").writerow(values)
    return line.getvalue().encode()


# Registered before /api/v1/contacts/{contact}, which would take "export" for a contact.
@routes.get("/api/v1/contacts/export")
async def export_contacts(request: web.Request) -> web.StreamResponse:
    """Every contact as CSV, both identifiers on each line, streamed page by page, in
    the columns the import reads (so an export can be imported again)."""
    query = parse_query(request, ExportQuery)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="contacts.csv"',
        }
    )
    await response.prepare(request)
    await response.write(_export_line(list(EXPORT_COLUMNS)))
    after: int | None = None
    while True:
        async with request.app[STORE].read() as tx:
            page = await tx.contacts.list(tag=query.tag, after_id=after, limit=EXPORT_PAGE)
        lines = [
            _export_line(
                [
                    contact.id,
                    contact.wa_id or "",
                    contact.user_id or "",
                    contact.name or "",
                    "yes" if contact.marketing_opt_in else "no",
                    ";".join(contact.tags),
                    contact.created_at.isoformat(),
                    contact.updated_at.isoformat(),
                ]
            )
            for contact in page
        ]
        if lines:
            await response.write(b"".join(lines))
        if len(page) < EXPORT_PAGE:
            break
        after = page[-1].id
    await response.write_eof()
    return response


@routes.get("/api/v1/contacts/{contact}")
async def get_contact(request: web.Request) -> web.Response:
    contact = await directory.find_contact(request.app[STORE], contact_address(request))
    return web.json_response(contact_json(contact))


@routes.patch("/api/v1/contacts/{contact}")
async def patch_contact(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, ContactPatch)
    changes = directory.ContactChanges(
        name=body.name,
        marketing_opt_in=body.marketing_opt_in,
        attributes=body.attributes,
        tags=body.tags,
    )
    consent = Consent(ConsentSource.API, actor="api", note=body.note)
    contact = await directory.change_contact(request.app[STORE], address, changes, consent)
    return web.json_response(contact_json(contact))


@routes.get("/api/v1/contacts/{contact}/consent")
async def consent_history(request: web.Request) -> web.Response:
    events = await directory.consent_history(request.app[STORE], contact_address(request))
    return web.json_response([event.model_dump(mode="json") for event in events])


@routes.post("/api/v1/contacts/import")
async def import_contacts(request: web.Request) -> web.Response:
    data = await read_limited(request, IMPORT_LIMIT_BYTES)
    settings = request.app[SETTINGS]
    try:
        # Parsing 50,000 numbers takes a while; keep the event loop answering webhooks.
        parsed = await asyncio.to_thread(parse_contacts_csv, data, settings.default_region)
    except CsvFormatError as error:
        raise invalid_csv(error) from None
    totals = await directory.import_contacts(
        request.app[STORE],
        parsed.rows,
        users=parsed.users,
        default_opt_in=settings.default_marketing_opt_in,
        consent=Consent(ConsentSource.IMPORT, actor="api"),
    )
    return web.json_response(
        {
            "created": totals.created,
            "updated": totals.updated,
            "unchanged": totals.unchanged,
            "errors": [{"line": e.line, "message": e.message} for e in parsed.errors],
        }
    )

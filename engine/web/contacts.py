"""REST: contacts, their consent ledger, and CSV import."""

from __future__ import annotations

import asyncio
from typing import Any

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

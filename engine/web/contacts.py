"""REST: contacts, their consent ledger, and CSV import."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.contacts.csv_import import MAX_TAG_LENGTH, CsvFormatError, parse_contacts_csv
from engine.models.contact import ConsentSource, Contact
from engine.phone import InvalidPhoneNumber, to_wa_id
from engine.store import AlreadyExists, Tx
from engine.store.contacts import Consent, ImportCounts, NewContact
from engine.web.errors import ApiError, not_found
from engine.web.keys import SETTINGS, STORE
from engine.web.validation import Body, PhoneNumber, parse_body, parse_query

routes = web.RouteTableDef()

IMPORT_LIMIT_BYTES = 64 * 1024 * 1024
IMPORT_BATCH_ROWS = 1000

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_LENGTH)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]


class ContactCreate(Body):
    wa_id: PhoneNumber
    name: Name | None = None
    marketing_opt_in: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)


class ContactPatch(Body):
    name: Name | None = None
    marketing_opt_in: bool | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description="merged into the contact's; a null value removes the key"
    )
    tags: list[Tag] | None = Field(default=None, description="replaces the contact's tags")
    note: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="kept in the consent ledger with an opt-in change"
    )


class ContactQuery(Body):
    tag: str | None = None
    after: int | None = Field(default=None, ge=0, description="the last id of the previous page")
    limit: int = Field(default=100, ge=1, le=1000)


def contact_json(contact: Contact) -> dict[str, Any]:
    return contact.model_dump(mode="json")


def contact_address(request: web.Request) -> str:
    """The contact named in the path: a phone number in any form, or a Meta user id."""
    raw = request.match_info["contact"]
    if "." in raw:  # business-scoped user ids look like US.13491208655302741918
        return raw
    try:
        return to_wa_id(raw, request.app[SETTINGS].default_region)
    except InvalidPhoneNumber as error:
        raise ApiError(
            422,
            "invalid_request",
            f"wa_id: {error}",
            fields=[{"field": "wa_id", "message": str(error)}],
        ) from None


async def require_contact(tx: Tx, address: str) -> Contact:
    contact = await tx.contacts.get(address)
    if contact is None:
        raise not_found(f"contact {address}")
    return contact


def invalid_csv(error: CsvFormatError) -> ApiError:
    """A CSV file that cannot be read at all: 422 with the line."""
    return ApiError(
        422,
        "invalid_csv",
        f"line {error.line}: {error.message}",
        errors=[{"line": error.line, "message": error.message}],
    )


@routes.post("/api/v1/contacts")
async def create_contact(request: web.Request) -> web.Response:
    body = await parse_body(request, ContactCreate)
    opt_in = body.marketing_opt_in
    new = NewContact(
        wa_id=body.wa_id,
        name=body.name,
        marketing_opt_in=request.app[SETTINGS].default_marketing_opt_in
        if opt_in is None
        else opt_in,
        attributes=body.attributes,
        tags=sorted(set(body.tags)),
    )
    try:
        contact = await request.app[STORE].write(
            lambda tx: tx.contacts.create(new, Consent(ConsentSource.API, actor="api"))
        )
    except AlreadyExists:
        raise ApiError(409, "contact_exists", f"contact {body.wa_id} already exists") from None
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
    address = contact_address(request)
    async with request.app[STORE].read() as tx:
        contact = await require_contact(tx, address)
    return web.json_response(contact_json(contact))


@routes.patch("/api/v1/contacts/{contact}")
async def patch_contact(request: web.Request) -> web.Response:
    address = contact_address(request)
    body = await parse_body(request, ContactPatch)

    async def job(tx: Tx) -> Contact:
        contact = await require_contact(tx, address)
        if body.marketing_opt_in is not None:
            consent = Consent(ConsentSource.API, actor="api", note=body.note)
            await tx.contacts.set_opt_in(contact.id, body.marketing_opt_in, consent)
        return await tx.contacts.update(
            contact.id,
            name=body.name,
            attributes=body.attributes,
            tags=None if body.tags is None else sorted(set(body.tags)),
        )

    return web.json_response(contact_json(await request.app[STORE].write(job)))


@routes.get("/api/v1/contacts/{contact}/consent")
async def consent_history(request: web.Request) -> web.Response:
    address = contact_address(request)
    async with request.app[STORE].read() as tx:
        contact = await require_contact(tx, address)
        events = await tx.contacts.consent_history(contact.id)
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
    consent = Consent(ConsentSource.IMPORT, actor="api")
    store = request.app[STORE]
    totals = ImportCounts(0, 0, 0)
    # Several small transactions rather than one long one, so other writes interleave.
    for start in range(0, len(parsed.rows), IMPORT_BATCH_ROWS):
        chunk = parsed.rows[start : start + IMPORT_BATCH_ROWS]
        counts = await store.write(
            lambda tx, chunk=chunk: tx.contacts.import_batch(  # type: ignore[misc]
                chunk, default_opt_in=settings.default_marketing_opt_in, consent=consent
            )
        )
        totals = ImportCounts(
            totals.created + counts.created,
            totals.updated + counts.updated,
            totals.unchanged + counts.unchanged,
        )
    return web.json_response(
        {
            "created": totals.created,
            "updated": totals.updated,
            "unchanged": totals.unchanged,
            "errors": [{"line": e.line, "message": e.message} for e in parsed.errors],
        }
    )


async def read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

"""The marketers' contacts: search by name or number, filter by tag and opt-in, import
a CSV file (each bad line shown with its reason), and a contact's page: the opt-in
switch (confirmed, with a note), tags and attributes, and the consent history.

Everything goes through :mod:`engine.contacts.directory` and the CSV reader the REST
API uses; an opt-in change is recorded in the marketer's name."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from engine.contacts import directory
from engine.contacts.csv_import import CsvFormatError, parse_contacts_csv
from engine.contacts.refusals import ContactRefusal
from engine.models.contact import ConsentSource
from engine.store.contacts import Consent, ContactSearch
from engine.web.console.marketing.common import (
    Form,
    FormErrors,
    lines_of,
    marketing_page,
    me,
    refused,
    text,
    validate,
)
from engine.web.contact_body import ContactPatch
from engine.web.error_answers import ApiError
from engine.web.keys import SETTINGS, STORE
from engine.web.uploads import IMPORT_LIMIT_BYTES, invalid_csv

routes = web.RouteTableDef()

SECTION = "contacts"
PAGE = 50
OPT_IN_FILTERS = {"yes": True, "no": False}


def _search_of(request: web.Request) -> ContactSearch:
    query = request.query
    after = query.get("after", "")
    return ContactSearch(
        text=query.get("q", "").strip() or None,
        tag=query.get("tag", "").strip() or None,
        opted_in=OPT_IN_FILTERS.get(query.get("opt_in", "")),
        after_id=int(after) if after.isdigit() else None,
        limit=PAGE,
    )


async def _list_page(
    request: web.Request,
    *,
    imported: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
) -> web.Response:
    where = _search_of(request)
    async with request.app[STORE].read() as tx:
        found = await tx.contacts.search(where)
    return marketing_page(
        request,
        "marketing/contacts.html",
        section=SECTION,
        status=errors.status if errors else 200,
        contacts=found,
        where=where,
        query=dict(request.query),
        next_after=found[-1].id if len(found) == PAGE else None,
        imported=imported,
        errors=errors or FormErrors(),
    )


@routes.get("/console/contacts")
async def list_page(request: web.Request) -> web.Response:
    return await _list_page(request)


def uploaded_file(form: Form, name: str = "file") -> bytes | None:
    upload = form.get(name)
    if upload is None or isinstance(upload, str):
        return None
    return upload.file.read(IMPORT_LIMIT_BYTES + 1)  # type: ignore[no-any-return]


def no_file() -> FormErrors:
    return FormErrors.of(
        ApiError(
            422,
            "invalid_request",
            "file: choose a CSV file to upload",
            fields=[{"field": "file", "message": "choose a CSV file to upload"}],
        )
    )


@routes.post("/console/contacts/import")
async def import_csv(request: web.Request) -> web.Response:
    form = await request.post()
    data = uploaded_file(form)
    if not data:
        return await _list_page(request, errors=no_file())
    if len(data) > IMPORT_LIMIT_BYTES:
        error = ApiError(413, "body_too_large", f"the file is over {IMPORT_LIMIT_BYTES} bytes")
        return await _list_page(request, errors=FormErrors.of(error))
    settings = request.app[SETTINGS]
    try:
        parsed = await asyncio.to_thread(parse_contacts_csv, data, settings.default_region)
    except CsvFormatError as error:
        return await _list_page(request, errors=FormErrors.of(invalid_csv(error)))
    totals = await directory.import_contacts(
        request.app[STORE],
        parsed.rows,
        default_opt_in=settings.default_marketing_opt_in,
        consent=Consent(ConsentSource.IMPORT, actor=me(request).email),
    )
    return await _list_page(
        request,
        imported={
            "created": totals.created,
            "updated": totals.updated,
            "unchanged": totals.unchanged,
            "errors": parsed.errors,
        },
    )


async def _contact_page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    saved: bool = False,
) -> web.Response:
    address = request.match_info["contact"]
    try:
        address = directory.contact_address(address, request.app[SETTINGS].default_region)
        async with request.app[STORE].read() as tx:
            contact = await directory.require_contact(tx, address)
            history = await tx.contacts.consent_history(contact.id)
    except ContactRefusal as refusal:
        failed = refused(refusal)
        return marketing_page(
            request,
            "marketing/missing.html",
            section=SECTION,
            status=failed.status,
            message=failed.summary,
        )
    return marketing_page(
        request,
        "marketing/contact.html",
        section=SECTION,
        status=errors.status if errors else 200,
        contact=contact,
        history=history,
        values=values
        or {
            "name": contact.name or "",
            "tags": ", ".join(contact.tags),
            "attributes": json.dumps(contact.attributes, indent=2, ensure_ascii=False),
        },
        errors=errors or FormErrors(),
        saved=saved,
    )


@routes.get("/console/contacts/{contact}")
async def contact_page(request: web.Request) -> web.Response:
    return await _contact_page(request, saved=request.query.get("saved") == "1")


@routes.post("/console/contacts/{contact}")
async def change_contact(request: web.Request) -> web.StreamResponse:
    """Name, tags and attributes, as ``PATCH /contacts/{contact}`` changes them (the
    attributes as a whole: a key left out of the box is removed)."""
    form = await request.post()
    values = {name: text(form, name) for name in ("name", "tags", "attributes")}
    try:
        attributes: Any = json.loads(values["attributes"] or "{}")
    except ValueError as error:
        attributes = None
        problem = f"not valid JSON: {error}"
        failed = ApiError(
            422,
            "invalid_request",
            f"attributes: {problem}",
            fields=[{"field": "attributes", "message": problem}],
        )
        return await _contact_page(request, values=values, errors=FormErrors.of(failed))
    try:
        address = directory.contact_address(
            request.match_info["contact"], request.app[SETTINGS].default_region
        )
        current = await directory.find_contact(request.app[STORE], address)
        if isinstance(attributes, dict):
            # Keys the marketer removed from the box are removed from the contact.
            attributes = dict.fromkeys(current.attributes) | attributes
        body = validate(
            request,
            ContactPatch,
            {"name": values["name"], "tags": lines_of(values["tags"]), "attributes": attributes},
        )
        changes = directory.ContactChanges(
            name=body.name, attributes=body.attributes, tags=body.tags
        )
        await directory.change_contact(
            request.app[STORE],
            address,
            changes,
            Consent(ConsentSource.AGENT, actor=me(request).email),
        )
    except ApiError as error:
        return await _contact_page(request, values=values, errors=FormErrors.of(error))
    except ContactRefusal as refusal:
        return await _contact_page(request, values=values, errors=refused(refusal))
    raise web.HTTPSeeOther(f"/console/contacts/{address}?saved=1")

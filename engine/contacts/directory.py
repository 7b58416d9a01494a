"""The contact use cases the REST API and the console share: find a contact by the
address a caller gave, create one, change one, set its opt-in, read its consent ledger,
and import a parsed CSV file. Refusals are :mod:`engine.contacts.refusals`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from engine.contacts.csv_import import ImportedUser
from engine.contacts.refusals import ContactExists, ContactNotFound, InvalidAddress
from engine.identity import USER_ID_SHAPE, is_user_id, looks_like_user_id
from engine.models.contact import ConsentEvent, Contact, opt_in_of_new_contact
from engine.phone import InvalidPhoneNumber, to_wa_id
from engine.store import AlreadyExists, Store, Tx
from engine.store.contacts import Consent, ImportCounts, ImportedContact, NewContact

IMPORT_BATCH_ROWS = 1000
"""Rows imported per store transaction, so other writes interleave."""


@dataclass(frozen=True, slots=True)
class ContactChanges:
    """What to change; None leaves a field as it is."""

    name: str | None = None
    marketing_opt_in: bool | None = None
    attributes: Mapping[str, Any] | None = None
    """Merged into the contact's; a None value removes the key."""
    tags: Sequence[str] | None = None
    """Replaces the contact's tags."""


def contact_address(raw: str, default_region: str) -> str:
    """The contact a caller named: its ``wa_id`` or business-scoped user id as Meta gave
    it, or a phone number in any form.

    Contacts made from webhooks carry the id Meta gave, and Meta knows number ranges
    before the phone number library does: so digits the library cannot read are taken
    as they are (they name a stored contact or none, a 404), and only a number written
    with spaces, dashes or brackets has to be one the library knows. New contacts are
    checked strictly where they are made (:func:`engine.phone.to_wa_id`).

    >>> contact_address("972912345678", "US"), contact_address("+1 650-555-1234", "US")
    ('972912345678', '16505551234')
    >>> contact_address("6505551234", "US"), contact_address("US.1349120865", "US")
    ('16505551234', 'US.1349120865')
    >>> contact_address("US.13 49", "US")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    engine.contacts.refusals.InvalidAddress: user_id: 'US.13 49' is not a user id (...)
    """
    text = raw.strip()
    if looks_like_user_id(text):  # business-scoped user ids look like US.13491208655302741918
        if not is_user_id(text):
            raise InvalidAddress("user_id", f"{text!r} is not a user id ({USER_ID_SHAPE})")
        return text
    digits = text.removeprefix("+")
    try:
        return to_wa_id(text, default_region)
    except InvalidPhoneNumber as error:
        if digits.isascii() and digits.isdigit() and len(digits) <= 20:
            return digits
        raise InvalidAddress("wa_id", str(error)) from None


async def require_contact(tx: Tx, address: str) -> Contact:
    contact = await tx.contacts.get(address)
    if contact is None:
        raise ContactNotFound(address)
    return contact


async def create_contact(store: Store, new: NewContact, consent: Consent) -> Contact:
    try:
        return await store.write(lambda tx: tx.contacts.create(new, consent))
    except AlreadyExists:
        raise ContactExists(str(new.wa_id or new.user_id)) from None


async def change_contact(
    store: Store, address: str, changes: ContactChanges, consent: Consent
) -> Contact:
    """Change the contact; an opt-in change goes to the consent ledger with ``consent``."""

    async def job(tx: Tx) -> Contact:
        contact = await require_contact(tx, address)
        if changes.marketing_opt_in is not None:
            await tx.contacts.set_opt_in(contact.id, changes.marketing_opt_in, consent)
        return await tx.contacts.update(
            contact.id,
            name=changes.name,
            attributes=changes.attributes,
            tags=None if changes.tags is None else sorted(set(changes.tags)),
        )

    return await store.write(job)


async def set_opt_in(
    store: Store, address: str, opted_in: bool, consent: Consent
) -> tuple[Contact, list[ConsentEvent]]:
    """Set the contact's marketing opt-in; the contact and its consent ledger after."""

    async def job(tx: Tx) -> tuple[Contact, list[ConsentEvent]]:
        contact = await require_contact(tx, address)
        await tx.contacts.set_opt_in(contact.id, opted_in, consent)
        updated = await require_contact(tx, address)
        return updated, await tx.contacts.consent_history(contact.id)

    return await store.write(job)


async def find_contact(store: Store, address: str) -> Contact:
    async with store.read() as tx:
        return await require_contact(tx, address)


async def consent_history(store: Store, address: str) -> list[ConsentEvent]:
    async with store.read() as tx:
        contact = await require_contact(tx, address)
        return await tx.contacts.consent_history(contact.id)


async def import_contacts(
    store: Store,
    rows: Sequence[ImportedContact],
    *,
    default_opt_in: bool,
    consent: Consent,
    users: Sequence[ImportedUser] = (),
) -> ImportCounts:
    """Create or update every row, several small transactions rather than one long one;
    ``users`` (rows with a user id) one by one, linking a number and a user id given
    together as a webhook naming both would."""
    totals = ImportCounts(0, 0, 0)
    for start in range(0, len(users), IMPORT_BATCH_ROWS):
        some = users[start : start + IMPORT_BATCH_ROWS]

        async def users_job(tx: Tx, some: Sequence[ImportedUser] = some) -> ImportCounts:
            outcomes = [await _import_user(tx, row, default_opt_in, consent) for row in some]
            return ImportCounts(
                outcomes.count("created"), outcomes.count("updated"), outcomes.count("unchanged")
            )

        counts = await store.write(users_job)
        totals = ImportCounts(
            totals.created + counts.created,
            totals.updated + counts.updated,
            totals.unchanged + counts.unchanged,
        )
    for start in range(0, len(rows), IMPORT_BATCH_ROWS):
        chunk = rows[start : start + IMPORT_BATCH_ROWS]

        async def job(tx: Tx, chunk: Sequence[ImportedContact] = chunk) -> ImportCounts:
            return await tx.contacts.import_batch(
                chunk, default_opt_in=default_opt_in, consent=consent
            )

        counts = await store.write(job)
        totals = ImportCounts(
            totals.created + counts.created,
            totals.updated + counts.updated,
            totals.unchanged + counts.unchanged,
        )
    return totals


async def _import_user(
    tx: Tx, row: ImportedUser, default_opt_in: bool, consent: Consent
) -> Literal["created", "updated", "unchanged"]:
    before = [await tx.contacts.get(a) for a in (row.wa_id, row.user_id) if a is not None]
    known = [contact for contact in before if contact is not None]
    if not known:
        opt_in = opt_in_of_new_contact(row.marketing_opt_in, default=default_opt_in)
        new = NewContact(
            wa_id=row.wa_id, user_id=row.user_id, name=row.name, marketing_opt_in=opt_in
        )
        await tx.contacts.create(new, consent)
        if row.tags:
            await tx.contacts.add_tags((await require_contact(tx, row.user_id)).id, row.tags)
        return "created"
    # Found by either: fill in the other, or merge the two contacts they were.
    contact, _ = await tx.contacts.get_or_create(
        NewContact(wa_id=row.wa_id, user_id=row.user_id, marketing_opt_in=default_opt_in),
        consent,
    )
    changed = len({c.id for c in known}) > 1 or (contact.wa_id, contact.user_id) != (
        known[0].wa_id,
        known[0].user_id,
    )
    if row.marketing_opt_in is not None:
        changed |= await tx.contacts.set_opt_in(contact.id, row.marketing_opt_in, consent)
    if row.name is not None and row.name != contact.name:
        await tx.contacts.update(contact.id, name=row.name)
        changed = True
    if set(row.tags) - set(contact.tags):
        await tx.contacts.add_tags(contact.id, row.tags)
        changed = True
    return "updated" if changed else "unchanged"

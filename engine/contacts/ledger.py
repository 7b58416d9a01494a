"""The consent ledger as a hand-over: every event of every contact, read a page at a time
(a keyset cursor on the event id), so an export of millions of events holds one page in
memory; and the erasure of a person, which keeps only a keyed hash of their number and
user id so they start opted out if they come back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from engine.contacts.directory import require_contact
from engine.models.suppression import SECRET_KEY, new_secret, suppression_keys
from engine.store import Store, Tx
from engine.store.contacts import LedgerEntry

EXPORT_PAGE = 1000

EXPORT_FIELDS = (
    "event_id",
    "contact_id",
    "wa_id",
    "user_id",
    "marketing_opt_in",
    "source",
    "actor",
    "at",
    "note",
    "evidence",
)


async def ledger_entries(
    store: Store, *, since: datetime | None = None, page: int = EXPORT_PAGE
) -> AsyncIterator[LedgerEntry]:
    """Every consent event from ``since`` on, oldest first, one short read per page."""
    after = 0
    while True:
        async with store.read() as tx:
            entries = await tx.contacts.ledger_page(after_id=after, since=since, limit=page)
        for entry in entries:
            yield entry
        if len(entries) < page:
            return
        after = entries[-1].id


def export_record(entry: LedgerEntry) -> dict[str, Any]:
    """One event as exported (the fields of :data:`EXPORT_FIELDS`)."""
    event = entry.event
    return {
        "event_id": entry.id,
        "contact_id": entry.contact_id,
        "wa_id": entry.wa_id,
        "user_id": entry.user_id,
        "marketing_opt_in": event.marketing_opt_in,
        "source": event.source.value,
        "actor": event.actor,
        "at": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "note": event.note,
        "evidence": event.evidence,
    }


async def erase_contact(store: Store, address: str) -> None:
    """Erase the contact ``address`` names (ContactNotFound when none, also once erased),
    keeping a suppression entry for their number and user id."""
    candidate = new_secret()  # made outside the job: a job is run again as it was

    async def job(tx: Tx) -> None:
        contact = await require_contact(tx, address)
        secret = await tx.settings.get(SECRET_KEY)
        if secret is None:
            secret = candidate
            await tx.settings.put(SECRET_KEY, secret)
        keys = suppression_keys(secret, wa_id=contact.wa_id, user_id=contact.user_id)
        await tx.contacts.erase(contact.id, keys)

    await store.write(job)

"""Private notes: what agents write in a conversation for each other. A note is kept in
the desk's own log, never in the messages the sender reads, so it cannot reach the
customer."""

from __future__ import annotations

from datetime import datetime

from engine.agents.desk import require_agent
from engine.agents.work_refusals import InvalidField
from engine.contacts.directory import require_contact
from engine.models.desk_work import DeskEntry, EntryKind
from engine.store import Store, Tx

NOTE_MAX = 4000


async def add_note_as(
    store: Store, address: str, email: str, text: str, *, now: datetime
) -> DeskEntry:
    text = text.strip()
    if not text:
        raise InvalidField("text", "write something")
    if len(text) > NOTE_MAX:
        raise InvalidField("text", f"at most {NOTE_MAX} characters")

    async def job(tx: Tx) -> DeskEntry:
        contact = await require_contact(tx, address)
        author = await require_agent(tx, email)
        entry = DeskEntry(kind=EntryKind.NOTE, author=author.email, text=text, at=now)
        return await tx.desk_log.add(contact.id, entry)

    return await store.write(job)

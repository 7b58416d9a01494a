from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.clock import Clock
from engine.models.contact import ConsentEvent, ConsentSource, Contact, opt_in_of_new_contact
from engine.store.contact_merge import statements as merge_statements
from engine.store.contacts import (
    Consent,
    ContactRepo,
    ContactSearch,
    ImportCounts,
    ImportedContact,
    NewContact,
    like_escape,
    merged_contact,
)
from engine.store.failures import AlreadyExists, NotFound
from engine.store.sqlite.db import Db, from_db, to_db

_COLUMNS = """
    c.id, c.wa_id, c.user_id, c.name, c.marketing_opt_in, c.attributes, c.created_at,
    c.updated_at,
    (SELECT json_group_array(tag) FROM
        (SELECT tag FROM contact_tags t WHERE t.contact_id = c.id ORDER BY tag)) AS tags
"""
_CHUNK = 500


def contact_from_row(row: sqlite3.Row, prefix: str = "") -> Contact:
    """A contact from the columns of ``_COLUMNS``; in a join that puts them beside
    another table's, they are named with ``prefix`` (``contact_id``, ``contact_name``...)."""
    return Contact(
        id=row[f"{prefix}id"],
        wa_id=row[f"{prefix}wa_id"],
        user_id=row[f"{prefix}user_id"],
        name=row[f"{prefix}name"],
        marketing_opt_in=bool(row[f"{prefix}marketing_opt_in"]),
        attributes=json.loads(row[f"{prefix}attributes"]),
        tags=tuple(json.loads(row[f"{prefix}tags"])),
        created_at=from_db(row[f"{prefix}created_at"]),
        updated_at=from_db(row[f"{prefix}updated_at"]),
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteContactRepo(ContactRepo):
    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, address: str) -> Contact | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM contacts c WHERE c.wa_id = ? OR c.user_id = ?",
            (address, address),
        )
        return None if row is None else contact_from_row(row)

    async def get_by_id(self, contact_id: int) -> Contact | None:
        row = await self._db.one(f"SELECT {_COLUMNS} FROM contacts c WHERE c.id = ?", (contact_id,))
        return None if row is None else contact_from_row(row)

    async def _require(self, contact_id: int) -> Contact:
        contact = await self.get_by_id(contact_id)
        if contact is None:
            raise NotFound(f"no contact with id {contact_id}")
        return contact

    async def create(self, new: NewContact, consent: Consent) -> Contact:
        return await self._require(await self._insert(new, consent))

    async def _insert(self, new: NewContact, consent: Consent) -> int:
        """:meth:`create` without reading the contact back; its id."""
        now = to_db(self._clock.now())
        row = await self._db.one(
            "INSERT INTO contacts (wa_id, user_id, name, marketing_opt_in, attributes,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                new.wa_id,
                new.user_id,
                new.name,
                int(new.marketing_opt_in),
                json.dumps(dict(new.attributes)),
                now,
                now,
            ),
        )
        if row is None:
            raise AlreadyExists(f"a contact with {new.wa_id or new.user_id} exists")
        contact_id: int = row["id"]
        await self._append_consent(contact_id, new.marketing_opt_in, consent, now)
        if new.tags:
            await self.add_tags(contact_id, new.tags)
        return contact_id

    async def get_or_create(self, new: NewContact, consent: Consent) -> tuple[Contact, bool]:
        by_wa_id, by_user_id = await self._find(new.wa_id), await self._find(new.user_id)
        if by_wa_id is None and by_user_id is None:
            return await self.create(new, consent), True
        if by_wa_id is not None and by_user_id is not None and by_wa_id.id != by_user_id.id:
            # The number and the user id were two contacts: they are one person.
            kept, merged = sorted((by_wa_id, by_user_id), key=lambda contact: contact.id)
            now = to_db(self._clock.now())
            return await self._merge(kept, merged, now=now, given=new), False
        contact = by_wa_id or by_user_id
        assert contact is not None
        # Meta may tell us the other identifier later: remember it. A customer who
        # changed number gets a new user id from Meta: the one given with the number wins.
        missing: dict[str, str] = {}
        if new.wa_id and contact.wa_id is None:
            missing["wa_id"] = new.wa_id
        if new.user_id and contact.user_id != new.user_id and by_user_id is None:
            missing["user_id"] = new.user_id
        if missing:
            assignments = ", ".join(f"{column} = ?" for column in missing)
            await self._db.run(
                f"UPDATE contacts SET {assignments}, updated_at = ? WHERE id = ?",
                (*missing.values(), to_db(self._clock.now()), contact.id),
            )
            contact = await self._require(contact.id)
        return contact, False

    async def change_number(self, contact_id: int, new_wa_id: str, consent: Consent) -> Contact:
        contact = await self._require(contact_id)
        now = to_db(self._clock.now())
        holder = await self._find(new_wa_id)
        if holder is not None and holder.id != contact.id:
            contact = await self._merge(contact, holder, now=now)
        if contact.wa_id != new_wa_id:
            await self._db.run(
                "UPDATE contacts SET wa_id = ?, updated_at = ? WHERE id = ?",
                (new_wa_id, now, contact.id),
            )
        await self._append_consent(contact.id, contact.marketing_opt_in, consent, now)
        return await self._require(contact.id)

    async def _merge(
        self, kept: Contact, merged: Contact, *, now: str, given: NewContact | None = None
    ) -> Contact:
        """Merge ``merged`` into ``kept`` (:meth:`ContactRepo.change_number`)."""
        for sql, params in merge_statements(
            lambda n: f"?{n}", kept=kept.id, merged=merged.id, now=now
        ):
            await self._db.run(sql, params)
        link = merged_contact(
            kept,
            merged,
            wa_id=given.wa_id if given else None,
            user_id=given.user_id if given else None,
        )
        await self._db.run(
            "UPDATE contacts SET wa_id = ?, user_id = ?, name = ?, attributes = ?,"
            " marketing_opt_in = ?, updated_at = ? WHERE id = ?",
            (
                link.wa_id,
                link.user_id,
                link.name,
                json.dumps(link.attributes),
                int(link.marketing_opt_in),
                now,
                kept.id,
            ),
        )
        await self._append_consent(kept.id, link.marketing_opt_in, link.consent, now)
        return await self._require(kept.id)

    async def _find(self, address: str | None) -> Contact | None:
        return None if address is None else await self.get(address)

    async def update(
        self,
        contact_id: int,
        *,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Contact:
        contact = await self._require(contact_id)
        merged = dict(contact.attributes)
        for key, value in (attributes or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        await self._db.run(
            "UPDATE contacts SET name = ?, attributes = ?, updated_at = ? WHERE id = ?",
            (
                contact.name if name is None else name,
                json.dumps(merged),
                to_db(self._clock.now()),
                contact_id,
            ),
        )
        if tags is not None:
            await self._db.run("DELETE FROM contact_tags WHERE contact_id = ?", (contact_id,))
            await self.add_tags(contact_id, tags)
        return await self._require(contact_id)

    async def add_tags(self, contact_id: int, tags: Sequence[str]) -> None:
        await self._db.many(
            "INSERT OR IGNORE INTO contact_tags (contact_id, tag) VALUES (?, ?)",
            [(contact_id, tag) for tag in tags],
        )

    async def set_opt_in(self, contact_id: int, value: bool, consent: Consent) -> bool:
        now = to_db(self._clock.now())
        changed = await self._db.run(
            "UPDATE contacts SET marketing_opt_in = ?, updated_at = ?"
            " WHERE id = ? AND marketing_opt_in != ?",
            (int(value), now, contact_id, int(value)),
        )
        if not changed:
            await self._require(contact_id)
            return False
        await self._append_consent(contact_id, value, consent, now)
        return True

    async def _append_consent(
        self, contact_id: int, value: bool, consent: Consent, at: str
    ) -> None:
        await self._db.run(
            "INSERT INTO consent_events (contact_id, marketing_opt_in, source, actor, note, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (contact_id, int(value), consent.source.value, consent.actor, consent.note, at),
        )

    async def consent_history(self, contact_id: int) -> list[ConsentEvent]:
        rows = await self._db.all(
            "SELECT marketing_opt_in, source, actor, note, at FROM consent_events"
            " WHERE contact_id = ?1"
            " OR contact_id IN (SELECT id FROM contacts WHERE merged_into = ?1) ORDER BY id",
            (contact_id,),
        )
        return [
            ConsentEvent(
                marketing_opt_in=bool(row["marketing_opt_in"]),
                source=ConsentSource(row["source"]),
                actor=row["actor"],
                note=row["note"],
                at=from_db(row["at"]),
            )
            for row in rows
        ]

    async def search(self, where: ContactSearch) -> list[Contact]:
        clauses: list[str] = ["c.id > ?"]
        params: list[object] = [where.after_id or 0]
        if where.text:
            pattern = "%" + like_escape(where.text) + "%"
            clauses.append(
                "(c.name LIKE ? ESCAPE '\\' OR c.wa_id LIKE ? ESCAPE '\\'"
                " OR c.user_id LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        if where.tag is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = ?)"
            )
            params.append(where.tag)
        if where.opted_in is not None:
            clauses.append("c.marketing_opt_in = ?")
            params.append(int(where.opted_in))
        rows = await self._db.all(
            f"SELECT {_COLUMNS} FROM contacts c WHERE {' AND '.join(clauses)}"
            " ORDER BY c.id LIMIT ?",
            (*params, where.limit),
        )
        return [contact_from_row(row) for row in rows]

    async def list(
        self, *, tag: str | None = None, after_id: int | None = None, limit: int = 100
    ) -> list[Contact]:
        where: list[str] = ["c.id > ?", "c.merged_into IS NULL"]
        params: list[object] = [after_id or 0]
        if tag is not None:
            where.append(
                "EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = ?)"
            )
            params.append(tag)
        rows = await self._db.all(
            f"SELECT {_COLUMNS} FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.id LIMIT ?",
            (*params, limit),
        )
        return [contact_from_row(row) for row in rows]

    async def import_batch(
        self, rows: Sequence[ImportedContact], *, default_opt_in: bool, consent: Consent
    ) -> ImportCounts:
        now = to_db(self._clock.now())
        existing: dict[str, sqlite3.Row] = {}
        for chunk in _chunks([row.wa_id for row in rows]):
            marks = ",".join("?" * len(chunk))
            for found in await self._db.all(
                f"SELECT id, wa_id, name, marketing_opt_in FROM contacts WHERE wa_id IN ({marks})",
                chunk,
            ):
                existing[found["wa_id"]] = found
        current_tags: dict[int, set[str]] = {}
        ids = [found["id"] for found in existing.values()]
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for found in await self._db.all(
                f"SELECT contact_id, tag FROM contact_tags WHERE contact_id IN ({marks})", chunk
            ):
                current_tags.setdefault(found["contact_id"], set()).add(found["tag"])

        # Opt-in changes go through the one consent path (create with a Consent, here
        # without reading each contact back; set_opt_in), so the ledger records them as
        # it records any other.
        new_rows = [row for row in rows if row.wa_id not in existing]
        for row in new_rows:
            opt_in = opt_in_of_new_contact(row.marketing_opt_in, default=default_opt_in)
            await self._insert(
                NewContact(wa_id=row.wa_id, name=row.name, marketing_opt_in=opt_in), consent
            )
        opt_in_changes: list[tuple[int, bool]] = []
        updates: list[tuple[Any, ...]] = []
        unchanged = 0
        for row in rows:
            if row.wa_id not in existing:
                continue
            found = existing[row.wa_id]
            new_name = row.name if row.name is not None else found["name"]
            old_opt_in = bool(found["marketing_opt_in"])
            new_opt_in = old_opt_in if row.marketing_opt_in is None else row.marketing_opt_in
            new_tags = set(row.tags) - current_tags.get(found["id"], set())
            if new_name == found["name"] and new_opt_in == old_opt_in and not new_tags:
                unchanged += 1
                continue
            updates.append((new_name, now, found["id"]))
            if new_opt_in != old_opt_in:
                opt_in_changes.append((found["id"], new_opt_in))
        await self._db.many("UPDATE contacts SET name = ?, updated_at = ? WHERE id = ?", updates)
        for contact_id, opt_in in opt_in_changes:
            await self.set_opt_in(contact_id, opt_in, consent)
        await self._db.many(
            "INSERT OR IGNORE INTO contact_tags (contact_id, tag)"
            " SELECT id, ? FROM contacts WHERE wa_id = ?",
            [(tag, row.wa_id) for row in rows for tag in row.tags],
        )
        return ImportCounts(created=len(new_rows), updated=len(updates), unchanged=unchanged)

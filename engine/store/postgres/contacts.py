from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.clock import Clock
from engine.models.contact import ConsentEvent, ConsentSource, Contact, opt_in_of_new_contact
from engine.models.suppression import SECRET_KEY, suppression_keys
from engine.store.contact_merge import statements as merge_statements
from engine.store.contacts import (
    SUPPRESSED,
    Consent,
    ContactRepo,
    ContactSearch,
    ImportCounts,
    ImportedContact,
    LedgerEntry,
    NewContact,
    like_escape,
    merged_contact,
)
from engine.store.failures import AlreadyExists, NotFound
from engine.store.postgres.db import PgDb

CONTACT_COLUMNS = """
    c.id, c.wa_id, c.user_id, c.name, c.marketing_opt_in, c.attributes, c.created_at,
    c.updated_at,
    (SELECT coalesce(array_agg(t.tag ORDER BY t.tag), '{}'::text[])
       FROM contact_tags t WHERE t.contact_id = c.id) AS tags
"""
"""A contact's columns on ``contacts c``, for :func:`contact_from_row`."""


def contact_from_row(row: Mapping[str, Any], prefix: str = "") -> Contact:
    """A contact from the columns of :data:`CONTACT_COLUMNS`; in a join that puts them beside
    another table's, they are named with ``prefix`` (``contact_id``, ``contact_name``...)."""
    return Contact(
        id=row[f"{prefix}id"],
        wa_id=row[f"{prefix}wa_id"],
        user_id=row[f"{prefix}user_id"],
        name=row[f"{prefix}name"],
        marketing_opt_in=row[f"{prefix}marketing_opt_in"],
        attributes=row[f"{prefix}attributes"],
        tags=tuple(row[f"{prefix}tags"]),
        created_at=row[f"{prefix}created_at"],
        updated_at=row[f"{prefix}updated_at"],
    )


_INSERT_CONSENT = (
    "INSERT INTO consent_events (contact_id, marketing_opt_in, source, actor, note, at,"
    " evidence) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)

_ERASED_REASON = "The contact was erased before the message was sent."


def _evidence(consent: Consent) -> dict[str, Any] | None:
    return dict(consent.evidence) if consent.evidence is not None else None


def _event(row: Mapping[str, Any]) -> ConsentEvent:
    return ConsentEvent(
        marketing_opt_in=row["marketing_opt_in"],
        source=ConsentSource(row["source"]),
        actor=row["actor"],
        note=row["note"],
        at=row["at"],
        evidence=row["evidence"],
    )


class PgContactRepo(ContactRepo):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._secret: str | None = None
        self._secret_read = False

    async def get(self, address: str) -> Contact | None:
        # An address could be one contact's wa_id and another's user_id: the older wins.
        row = await self._db.one(
            f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE (c.wa_id = $1 OR c.user_id = $1)"
            " AND c.erased_at IS NULL ORDER BY c.id LIMIT 1",
            address,
        )
        return None if row is None else contact_from_row(row)

    async def get_by_id(self, contact_id: int) -> Contact | None:
        row = await self._db.one(
            f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = $1 AND c.erased_at IS NULL",
            contact_id,
        )
        return None if row is None else contact_from_row(row)

    async def _require(self, contact_id: int) -> Contact:
        contact = await self.get_by_id(contact_id)
        if contact is None:
            raise NotFound(f"no contact with id {contact_id}")
        return contact

    async def create(self, new: NewContact, consent: Consent) -> Contact:
        contact_id = await self._insert(new, consent)
        if contact_id is None:
            raise AlreadyExists(f"a contact with {new.wa_id or new.user_id} exists")
        return await self._require(contact_id)

    async def _insert(self, new: NewContact, consent: Consent) -> int | None:
        """The new contact's id, with its first ledger entry and tags; None when its wa_id
        or user_id is taken (also by a concurrent transaction, once that one commits)."""
        # Look first: an insert that conflicts would still use up an id, and ids are
        # handed out without gaps as SQLite's are.
        taken = await self._db.val(
            "SELECT 1 FROM contacts WHERE wa_id = $1 OR user_id = $2", new.wa_id, new.user_id
        )
        if taken:
            return None
        now = self._clock.now()
        if new.marketing_opt_in and await self._suppressed(new):
            new = replace(new, marketing_opt_in=False)
            consent = Consent(
                ConsentSource.SUPPRESSION, actor=consent.source.value, note=SUPPRESSED
            )
        contact_id: int | None = await self._db.val(
            "INSERT INTO contacts (wa_id, user_id, name, marketing_opt_in, attributes,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
            " ON CONFLICT DO NOTHING RETURNING id",
            new.wa_id,
            new.user_id,
            new.name,
            new.marketing_opt_in,
            dict(new.attributes),
            now,
        )
        if contact_id is None:
            return None
        await self._db.run(
            _INSERT_CONSENT,
            contact_id,
            new.marketing_opt_in,
            consent.source.value,
            consent.actor,
            consent.note,
            now,
            _evidence(consent),
        )
        if new.tags:
            await self.add_tags(contact_id, new.tags)
        return contact_id

    async def _suppressed(self, new: NewContact) -> bool:
        if not self._secret_read:  # once per transaction: an import inserts many
            self._secret = await self._db.val(
                "SELECT value FROM app_settings WHERE key = $1", SECRET_KEY
            )
            self._secret_read = True
        secret = self._secret
        if secret is None:
            return False  # nobody was ever erased here
        keys = suppression_keys(secret, wa_id=new.wa_id, user_id=new.user_id)
        return bool(
            await self._db.val(
                "SELECT EXISTS (SELECT 1 FROM suppressions WHERE key = ANY($1))", keys
            )
        )

    async def get_or_create(self, new: NewContact, consent: Consent) -> tuple[Contact, bool]:
        by_wa_id, by_user_id = await self._find(new.wa_id), await self._find(new.user_id)
        if by_wa_id is None and by_user_id is None:
            # Two webhooks may create the same contact at once: the insert that loses
            # finds the winner's row (or, under SERIALIZABLE, the job is run again).
            contact_id = await self._insert(new, consent)
            if contact_id is not None:
                return await self._require(contact_id), True
            by_wa_id, by_user_id = await self._find(new.wa_id), await self._find(new.user_id)
            if by_wa_id is None and by_user_id is None:
                raise AlreadyExists(f"a contact with {new.wa_id or new.user_id} exists")
        if by_wa_id is not None and by_user_id is not None and by_wa_id.id != by_user_id.id:
            # The number and the user id were two contacts: they are one person.
            kept, merged = sorted((by_wa_id, by_user_id), key=lambda contact: contact.id)
            return await self._merge(kept, merged, now=self._clock.now(), given=new), False
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
            assignments = ", ".join(
                f"{column} = ${number}" for number, column in enumerate(missing, start=3)
            )
            await self._db.run(
                f"UPDATE contacts SET {assignments}, updated_at = $2 WHERE id = $1",
                contact.id,
                self._clock.now(),
                *missing.values(),
            )
            contact = await self._require(contact.id)
        return contact, False

    async def change_number(self, contact_id: int, new_wa_id: str, consent: Consent) -> Contact:
        contact = await self._require(contact_id)
        now = self._clock.now()
        holder = await self._find(new_wa_id)
        if holder is not None and holder.id != contact.id:
            contact = await self._merge(contact, holder, now=now)
        if contact.wa_id != new_wa_id:
            await self._db.run(
                "UPDATE contacts SET wa_id = $2, updated_at = $3 WHERE id = $1",
                contact.id,
                new_wa_id,
                now,
            )
        await self._db.run(
            _INSERT_CONSENT,
            contact.id,
            contact.marketing_opt_in,
            consent.source.value,
            consent.actor,
            consent.note,
            now,
            _evidence(consent),
        )
        return await self._require(contact.id)

    async def _merge(
        self, kept: Contact, merged: Contact, *, now: datetime, given: NewContact | None = None
    ) -> Contact:
        """Merge ``merged`` into ``kept`` (:meth:`ContactRepo.change_number`)."""
        for sql, params in merge_statements(
            lambda n: f"${n}", kept=kept.id, merged=merged.id, now=now
        ):
            await self._db.run(sql, *params)
        link = merged_contact(
            kept,
            merged,
            wa_id=given.wa_id if given else None,
            user_id=given.user_id if given else None,
        )
        await self._db.run(
            "UPDATE contacts SET wa_id = $2, user_id = $3, name = $4, attributes = $5,"
            " marketing_opt_in = $6, updated_at = $7 WHERE id = $1",
            kept.id,
            link.wa_id,
            link.user_id,
            link.name,
            link.attributes,
            link.marketing_opt_in,
            now,
        )
        await self._db.run(
            _INSERT_CONSENT,
            kept.id,
            link.marketing_opt_in,
            link.consent.source.value,
            link.consent.actor,
            link.consent.note,
            now,
            _evidence(link.consent),
        )
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
        # The merge happens in the statement, so no other write slips between a read
        # of the attributes and the write of the merged ones.
        given = dict(attributes or {})
        changed = await self._db.run(
            "UPDATE contacts SET name = coalesce($2, name),"
            " attributes = (attributes || $3) - $4::text[], updated_at = $5 WHERE id = $1",
            contact_id,
            name,
            {key: value for key, value in given.items() if value is not None},
            [key for key, value in given.items() if value is None],
            self._clock.now(),
        )
        if not changed:
            raise NotFound(f"no contact with id {contact_id}")
        if tags is not None:
            await self._db.run("DELETE FROM contact_tags WHERE contact_id = $1", contact_id)
            await self.add_tags(contact_id, tags)
        return await self._require(contact_id)

    async def add_tags(self, contact_id: int, tags: Sequence[str]) -> None:
        if not tags:
            return
        await self._db.run(
            "INSERT INTO contact_tags (contact_id, tag) SELECT $1, unnest($2::text[])"
            " ON CONFLICT DO NOTHING",
            contact_id,
            list(tags),
        )

    async def set_opt_in(self, contact_id: int, value: bool, consent: Consent) -> bool:
        now = self._clock.now()
        changed = await self._db.run(
            "UPDATE contacts SET marketing_opt_in = $2, updated_at = $3"
            " WHERE id = $1 AND marketing_opt_in <> $2",
            contact_id,
            value,
            now,
        )
        if not changed:
            await self._require(contact_id)
            return False
        await self._db.run(
            _INSERT_CONSENT,
            contact_id,
            value,
            consent.source.value,
            consent.actor,
            consent.note,
            now,
            _evidence(consent),
        )
        return True

    async def consent_history(self, contact_id: int) -> list[ConsentEvent]:
        rows = await self._db.all(
            "SELECT marketing_opt_in, source, actor, note, at, evidence FROM consent_events"
            " WHERE contact_id = $1"
            " OR contact_id IN (SELECT id FROM contacts WHERE merged_into = $1) ORDER BY id",
            contact_id,
        )
        return [_event(row) for row in rows]

    async def ledger_page(
        self, *, after_id: int = 0, since: datetime | None = None, limit: int = 1000
    ) -> list[LedgerEntry]:
        rows = await self._db.all(
            "SELECT e.id, e.contact_id, c.wa_id, c.user_id, e.marketing_opt_in, e.source,"
            " e.actor, e.note, e.at, e.evidence FROM consent_events e"
            " JOIN contacts c ON c.id = e.contact_id"
            " WHERE e.id > $1 AND ($2::timestamptz IS NULL OR e.at >= $2)"
            " ORDER BY e.id LIMIT $3",
            after_id,
            since,
            limit,
        )
        return [
            LedgerEntry(row["id"], row["contact_id"], row["wa_id"], row["user_id"], _event(row))
            for row in rows
        ]

    async def search(self, where: ContactSearch) -> list[Contact]:
        clauses: list[str] = ["c.erased_at IS NULL", "c.id > $1"]
        params: list[object] = [where.after_id or 0]

        def bind(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        if where.text:
            pattern = bind("%" + like_escape(where.text) + "%")
            clauses.append(
                f"(c.name ILIKE {pattern} OR c.wa_id LIKE {pattern} OR c.user_id LIKE {pattern})"
            )
        if where.tag is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id"
                f" AND t.tag = {bind(where.tag)})"
            )
        if where.opted_in is not None:
            clauses.append(f"c.marketing_opt_in = {bind(where.opted_in)}")
        rows = await self._db.all(
            f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE {' AND '.join(clauses)}"
            f" ORDER BY c.id LIMIT {bind(where.limit)}",
            *params,
        )
        return [contact_from_row(row) for row in rows]

    async def erase(self, contact_id: int, suppress: Sequence[str]) -> bool:
        now = self._clock.now()
        erased = await self._db.run(
            "UPDATE contacts SET name = NULL, attributes = '{}', wa_id = NULL,"
            " user_id = 'erased:' || id, erased_at = $1, updated_at = $1"
            " WHERE id = $2 AND erased_at IS NULL",
            now,
            contact_id,
        )
        if not erased:
            return False
        await self._db.run(
            "INSERT INTO suppressions (key, created_at) SELECT k, $2 FROM unnest($1::text[]) k"
            " ON CONFLICT DO NOTHING",
            list(suppress),
            now,
        )
        await self._db.run("DELETE FROM contact_tags WHERE contact_id = $1", contact_id)
        await self._db.run(
            "UPDATE consent_events SET note = NULL, evidence = NULL"
            " WHERE contact_id = $1 AND (note IS NOT NULL OR evidence IS NOT NULL)",
            contact_id,
        )
        # Nothing left to send them: their queued messages are skipped, then every
        # message loses its words and its address.
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code, failure_reason)"
            " SELECT id, 'skipped', $1, 'contact_erased', $2 FROM messages"
            " WHERE contact_id = $3 AND status = 'queued'",
            now,
            _ERASED_REASON,
            contact_id,
        )
        await self._db.run(
            "UPDATE messages SET status = 'skipped', failure_code = 'contact_erased',"
            " failure_reason = $2, next_attempt_at = NULL, updated_at = $1"
            " WHERE contact_id = $3 AND status = 'queued'",
            now,
            _ERASED_REASON,
            contact_id,
        )
        await self._db.run(
            "UPDATE messages SET text = NULL, payload = NULL, request_body = NULL,"
            " recipient = NULL WHERE contact_id = $1",
            contact_id,
        )
        await self._db.run("DELETE FROM flow_wakeups WHERE contact_id = $1", contact_id)
        await self._db.run("DELETE FROM flow_sessions WHERE contact_id = $1", contact_id)
        # What agents wrote about them and the words an opt-out intent was read in.
        await self._db.run("UPDATE desk_entries SET text = NULL WHERE contact_id = $1", contact_id)
        await self._db.run("DELETE FROM consent_intents WHERE contact_id = $1", contact_id)
        return True

    async def list(
        self, *, tag: str | None = None, after_id: int | None = None, limit: int = 100
    ) -> list[Contact]:
        if tag is None:
            rows = await self._db.all(
                f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id > $1"
                " AND c.merged_into IS NULL AND c.erased_at IS NULL ORDER BY c.id LIMIT $2",
                after_id or 0,
                limit,
            )
        else:
            rows = await self._db.all(
                f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id > $1"
                " AND c.merged_into IS NULL AND c.erased_at IS NULL AND EXISTS"
                " (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = $3)"
                " ORDER BY c.id LIMIT $2",
                after_id or 0,
                limit,
                tag,
            )
        return [contact_from_row(row) for row in rows]

    async def import_batch(
        self, rows: Sequence[ImportedContact], *, default_opt_in: bool, consent: Consent
    ) -> ImportCounts:
        now = self._clock.now()
        existing = {
            found["wa_id"]: found
            for found in await self._db.all(
                "SELECT id, wa_id, name, marketing_opt_in FROM contacts"
                " WHERE wa_id = ANY($1::text[])",
                [row.wa_id for row in rows],
            )
        }
        current_tags: dict[int, set[str]] = {}
        for found in await self._db.all(
            "SELECT contact_id, tag FROM contact_tags WHERE contact_id = ANY($1::bigint[])",
            [found["id"] for found in existing.values()],
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
            old_opt_in: bool = found["marketing_opt_in"]
            new_opt_in = old_opt_in if row.marketing_opt_in is None else row.marketing_opt_in
            new_tags = set(row.tags) - current_tags.get(found["id"], set())
            if new_name == found["name"] and new_opt_in == old_opt_in and not new_tags:
                unchanged += 1
                continue
            updates.append((new_name, now, found["id"]))
            if new_opt_in != old_opt_in:
                opt_in_changes.append((found["id"], new_opt_in))
        await self._db.many("UPDATE contacts SET name = $1, updated_at = $2 WHERE id = $3", updates)
        for contact_id, opt_in in opt_in_changes:
            await self.set_opt_in(contact_id, opt_in, consent)
        await self._db.many(
            "INSERT INTO contact_tags (contact_id, tag) SELECT id, $1::text FROM contacts"
            " WHERE wa_id = $2 ON CONFLICT DO NOTHING",
            [(tag, row.wa_id) for row in rows for tag in row.tags],
        )
        return ImportCounts(created=len(new_rows), updated=len(updates), unchanged=unchanged)

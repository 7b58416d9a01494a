from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from engine.models.desk_work import (
    Assignment,
    ContactHit,
    DeskEntry,
    EntryKind,
    MessageHit,
    SavedReply,
)
from engine.models.message import Direction
from engine.store.desk_work import (
    AssignmentRepo,
    DeskLogRepo,
    SavedReplyRepo,
    SearchRepo,
    like_pattern,
    number_of,
)
from engine.store.sqlite.db import Db, from_db, from_db_opt, to_db

# Resolved while no customer message came after the resolution.
_RESOLVED = (
    "resolved_at IS NOT NULL AND (last_inbound_at IS NULL OR last_inbound_at <= resolved_at)"
)


class SqliteAssignmentRepo(AssignmentRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def assign(self, contact_id: int, agent: str, *, at: datetime) -> None:
        await self._db.run(
            "INSERT INTO conversations (contact_id, owner, agent, updated_at)"
            " VALUES (?, 'agent', ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET owner = 'agent', agent = excluded.agent,"
            " updated_at = excluded.updated_at, resolved_at = NULL",
            (contact_id, agent, to_db(at)),
        )

    async def resolve(self, contact_id: int, *, at: datetime) -> None:
        await self._db.run(
            "INSERT INTO conversations (contact_id, owner, updated_at, resolved_at)"
            " VALUES (?, 'bot', ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET resolved_at = excluded.resolved_at",
            (contact_id, to_db(at), to_db(at)),
        )

    async def reopen(self, contact_id: int) -> None:
        await self._db.run(
            "UPDATE conversations SET resolved_at = NULL WHERE contact_id = ?", (contact_id,)
        )

    async def get(self, contact_id: int) -> Assignment:
        row = await self._db.one(
            f"SELECT owner, agent, CASE WHEN {_RESOLVED} THEN resolved_at END AS resolved_at"
            " FROM conversations WHERE contact_id = ?",
            (contact_id,),
        )
        if row is None:
            return Assignment(agent=None)
        return Assignment(
            agent=row["agent"] if row["owner"] == "agent" else None,
            resolved_at=from_db_opt(row["resolved_at"]),
        )

    async def workload(self) -> dict[str, int]:
        rows = await self._db.all(
            "SELECT agent, count(*) AS open FROM conversations"
            f" WHERE owner = 'agent' AND agent IS NOT NULL AND NOT ({_RESOLVED})"
            " GROUP BY agent"
        )
        return {row["agent"]: row["open"] for row in rows}


class SqliteDeskLogRepo(DeskLogRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, contact_id: int, entry: DeskEntry) -> DeskEntry:
        row = await self._db.one(
            "INSERT INTO desk_entries (contact_id, kind, author, assignee, text, at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (
                contact_id,
                entry.kind.value,
                entry.author,
                entry.assignee,
                entry.text,
                to_db(entry.at),
            ),
        )
        assert row is not None
        return entry.model_copy(update={"id": int(row["id"])})

    async def entries(self, contact_id: int, *, limit: int = 500) -> list[DeskEntry]:
        rows = await self._db.all(
            f"SELECT {_ENTRY} FROM desk_entries WHERE contact_id = ? ORDER BY id DESC LIMIT ?",
            (contact_id, limit),
        )
        return [_entry(row) for row in reversed(rows)]

    async def entries_by_id(self, ids: Sequence[int]) -> dict[int, DeskEntry]:
        rows = await self._db.all(
            f"SELECT {_ENTRY} FROM desk_entries WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
        return {int(row["id"]): _entry(row) for row in rows}


_ENTRY = "id, kind, author, assignee, text, at"


def _entry(row: sqlite3.Row) -> DeskEntry:
    return DeskEntry(
        id=int(row["id"]),
        kind=EntryKind(row["kind"]),
        author=row["author"],
        assignee=row["assignee"],
        text=row["text"],
        at=from_db(row["at"]),
    )


class SqliteSavedReplyRepo(SavedReplyRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def put(self, reply: SavedReply) -> None:
        await self._db.run(
            "INSERT INTO saved_replies (shortcut, text, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (shortcut) DO UPDATE SET text = excluded.text,"
            " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (reply.shortcut, reply.text, reply.updated_by, to_db(reply.updated_at)),
        )

    async def delete(self, shortcut: str) -> bool:
        return await self._db.run("DELETE FROM saved_replies WHERE shortcut = ?", (shortcut,)) > 0

    async def all(self) -> list[SavedReply]:
        rows = await self._db.all(
            "SELECT shortcut, text, updated_by, updated_at FROM saved_replies ORDER BY shortcut"
        )
        return [
            SavedReply(
                shortcut=row["shortcut"],
                text=row["text"],
                updated_by=row["updated_by"],
                updated_at=from_db(row["updated_at"]),
            )
            for row in rows
        ]


TRIGRAM = 3
"""The shortest text the trigram index can find; shorter text is looked for row by row."""


class SqliteSearchRepo(SearchRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def contacts(self, text: str, *, limit: int = 20) -> list[ContactHit]:
        pattern = like_pattern(text)
        number = number_of(text)
        rows = await self._db.all(
            "SELECT c.id, c.wa_id, c.user_id, c.name,"
            " (SELECT json_group_array(tag) FROM"
            "   (SELECT tag FROM contact_tags t WHERE t.contact_id = c.id ORDER BY tag)) AS tags"
            " FROM contacts c"
            " WHERE c.name LIKE :p ESCAPE '\\' OR c.user_id LIKE :p ESCAPE '\\'"
            " OR c.wa_id LIKE :n ESCAPE '\\'"
            " OR EXISTS (SELECT 1 FROM contact_tags t"
            "            WHERE t.contact_id = c.id AND t.tag LIKE :p ESCAPE '\\')"
            " ORDER BY c.updated_at DESC, c.id DESC LIMIT :limit",
            {"p": pattern, "n": like_pattern(number) if number else pattern, "limit": limit},
        )
        return [_contact_hit(row) for row in rows]

    async def messages(self, text: str, *, limit: int = 20) -> list[MessageHit]:
        select = (
            "SELECT m.id, m.contact_id, coalesce(c.wa_id, c.user_id) AS address, c.name,"
            " m.direction, m.text, m.created_at FROM messages m"
            " JOIN contacts c ON c.id = m.contact_id"
        )
        if len(text) >= TRIGRAM:
            phrase = '"' + text.replace('"', '""') + '"'
            rows = await self._db.all(
                f"{select} WHERE m.rowid IN (SELECT rowid FROM message_text_search"
                "  WHERE message_text_search MATCH ?)"
                " ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
                (phrase, limit),
            )
        else:
            rows = await self._db.all(
                f"{select} WHERE m.text LIKE ? ESCAPE '\\'"
                " ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
                (like_pattern(text), limit),
            )
        return [
            MessageHit(
                message_id=row["id"],
                contact_id=row["contact_id"],
                address=row["address"],
                name=row["name"],
                direction=Direction(row["direction"]),
                text=row["text"],
                created_at=from_db(row["created_at"]),
            )
            for row in rows
        ]


def _contact_hit(row: sqlite3.Row) -> ContactHit:
    return ContactHit(
        contact_id=row["id"],
        address=row["wa_id"] or row["user_id"],
        wa_id=row["wa_id"],
        user_id=row["user_id"],
        name=row["name"],
        tags=tuple(json.loads(row["tags"])),
    )

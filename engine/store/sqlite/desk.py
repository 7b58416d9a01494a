from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from engine.clock import Clock
from engine.models.agent import (
    ComposeRecord,
    Confirmation,
    ConversationEvent,
    ConversationSummary,
    EventKind,
)
from engine.models.conversation import Conversation, Owner
from engine.store.desk import DeskChange, DeskRepo, SummaryFilter
from engine.store.sqlite.conversations import conversation_from_row
from engine.store.sqlite.db import Db, from_db, from_db_opt, to_db

_CONVERSATION = "contact_id, owner, agent, last_inbound_at"

# The page of conversations is chosen first (conversations_by_activity), so the
# correlated subqueries, which ride messages (contact_id, created_at), run only for it.
_UNREAD_SINCE_ANYONE = """(SELECT count(*) FROM messages m
         WHERE m.contact_id = cv.contact_id AND m.direction = 'inbound'
           AND m.created_at > coalesce(r.read_at, ''))"""
# One agent's unread: inbound messages stored after the last one they saw.
_UNREAD_FOR_READER = """(SELECT count(*) FROM messages m
         WHERE m.contact_id = cv.contact_id AND m.direction = 'inbound'
           AND m.id > coalesce((SELECT ar.last_read_id FROM agent_reads ar
                                 WHERE ar.agent = ? AND ar.contact_id = cv.contact_id), ''))"""

_SUMMARY = """
SELECT cv.contact_id, cv.owner, cv.agent, cv.last_inbound_at, cv.updated_at,
       cv.last_phone_number_id,
       c.wa_id, coalesce(c.wa_id, c.user_id) AS address, c.name, c.marketing_opt_in,
       {unread} AS unread,
       lm.created_at AS last_message_at, lm.text AS preview
  FROM (SELECT * FROM conversations{where}
         ORDER BY updated_at DESC, contact_id DESC LIMIT ?) cv
  JOIN contacts c ON c.id = cv.contact_id
  LEFT JOIN conversation_reads r ON r.contact_id = cv.contact_id
  LEFT JOIN messages lm ON lm.id = (
       SELECT m.id FROM messages m WHERE m.contact_id = cv.contact_id
        ORDER BY m.created_at DESC, m.id DESC LIMIT 1)
 ORDER BY cv.updated_at DESC, cv.contact_id DESC
"""


class SqliteDeskRepo(DeskRepo):
    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, contact_id: int, agent: str) -> tuple[Conversation, bool]:
        row = await self._db.one(
            "INSERT INTO conversations (contact_id, owner, agent, updated_at)"
            " VALUES (?, 'agent', ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET owner = 'agent', agent = excluded.agent,"
            " updated_at = excluded.updated_at"
            " WHERE conversations.owner = 'bot' OR conversations.agent IS NULL"
            f" RETURNING {_CONVERSATION}",
            (contact_id, agent, to_db(self._clock.now())),
        )
        if row is not None:
            return conversation_from_row(row), True
        current = await self._db.one(
            f"SELECT {_CONVERSATION} FROM conversations WHERE contact_id = ?", (contact_id,)
        )
        assert current is not None, "the upsert skipped an existing row"
        return conversation_from_row(current), False

    async def record_event(self, contact_id: int, event: ConversationEvent) -> None:
        await self._db.run(
            "INSERT INTO conversation_events (contact_id, kind, agent, flow, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (contact_id, event.kind.value, event.agent, event.flow, to_db(event.at)),
        )

    async def events(self, contact_id: int, *, limit: int = 100) -> list[ConversationEvent]:
        rows = await self._db.all(
            "SELECT kind, agent, flow, at FROM conversation_events WHERE contact_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (contact_id, limit),
        )
        return [
            ConversationEvent(
                kind=EventKind(row["kind"]),
                agent=row["agent"],
                flow=row["flow"],
                at=from_db(row["at"]),
            )
            for row in reversed(rows)
        ]

    async def record_compose(self, record: ComposeRecord) -> None:
        confirmation = record.confirmed_opted_out
        await self._db.run(
            "INSERT INTO compose_messages"
            " (message_id, agent, confirmed_by, confirmed_at, idempotency_key)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.message_id,
                record.agent,
                confirmation.by if confirmation else None,
                to_db(confirmation.at) if confirmation else None,
                record.idempotency_key,
            ),
        )

    async def compose_record_by_key(self, agent: str, key: str) -> ComposeRecord | None:
        row = await self._db.one(
            "SELECT message_id FROM compose_messages WHERE agent = ? AND idempotency_key = ?",
            (agent, key),
        )
        if row is None:
            return None
        return (await self.compose_records([row["message_id"]]))[row["message_id"]]

    async def changes_after(self, seq: int, *, limit: int) -> list[DeskChange]:
        rows = await self._db.all(
            "SELECT seq, contact_id, message_id, added, agent, entry_id FROM desk_changes"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [_change(row) for row in rows]

    async def changes_among(self, seqs: Sequence[int]) -> list[DeskChange]:
        # One writer at a time: SQLite commits changes in their order, leaving no gaps.
        return []

    async def last_change(self) -> int:
        row = await self._db.one("SELECT coalesce(max(seq), 0) AS seq FROM desk_changes")
        return 0 if row is None else int(row["seq"])

    async def prune_changes(self, before: datetime) -> int:
        return await self._db.run("DELETE FROM desk_changes WHERE at < ?", (to_db(before),))

    async def compose_records(self, message_ids: Sequence[str]) -> dict[str, ComposeRecord]:
        found: dict[str, ComposeRecord] = {}
        for start in range(0, len(message_ids), 500):
            chunk = list(message_ids[start : start + 500])
            for row in await self._db.all(
                "SELECT message_id, agent, confirmed_by, confirmed_at, idempotency_key"
                f" FROM compose_messages WHERE message_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                confirmation = (
                    Confirmation(by=row["confirmed_by"], at=from_db(row["confirmed_at"]))
                    if row["confirmed_by"]
                    else None
                )
                found[row["message_id"]] = ComposeRecord(
                    message_id=row["message_id"],
                    agent=row["agent"],
                    confirmed_opted_out=confirmation,
                    idempotency_key=row["idempotency_key"],
                )
        return found

    async def mark_read(self, contact_id: int, *, agent: str, at: datetime) -> None:
        await self._db.run(
            "INSERT INTO agent_reads (agent, contact_id, last_read_id, read_at)"
            " SELECT ?, ?, max(id), ? FROM messages WHERE contact_id = ? HAVING max(id) IS NOT NULL"
            " ON CONFLICT (agent, contact_id) DO UPDATE SET last_read_id = excluded.last_read_id,"
            " read_at = excluded.read_at WHERE excluded.last_read_id > agent_reads.last_read_id",
            (agent, contact_id, to_db(at), contact_id),
        )
        await self._db.run(
            "INSERT INTO conversation_reads (contact_id, read_at, read_by) VALUES (?, ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET read_at = excluded.read_at,"
            " read_by = excluded.read_by WHERE excluded.read_at > conversation_reads.read_at",
            (contact_id, to_db(at), agent),
        )

    async def summaries(self, where: SummaryFilter) -> list[ConversationSummary]:
        clauses: list[str] = []
        params: list[object] = []
        if where.owner is not None:
            clauses.append("owner = ?")
            params.append(where.owner.value)
        if where.agent is not None:
            clauses.append("owner = 'agent' AND agent = ?")
            params.append(where.agent)
        if where.waiting:
            clauses.append("owner = 'agent' AND agent IS NULL")
        if where.contact_id is not None:
            clauses.append("contact_id = ?")
            params.append(where.contact_id)
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if where.reader is not None:
            params.insert(0, where.reader)
            unread = _UNREAD_FOR_READER
        else:
            unread = _UNREAD_SINCE_ANYONE
        rows = await self._db.all(
            _SUMMARY.format(where=condition, unread=unread), (*params, where.limit)
        )
        return [
            ConversationSummary(
                contact_id=row["contact_id"],
                address=row["address"],
                wa_id=row["wa_id"],
                name=row["name"],
                marketing_opt_in=bool(row["marketing_opt_in"]),
                owner=Owner(row["owner"]),
                agent=row["agent"],
                last_inbound_at=from_db_opt(row["last_inbound_at"]),
                last_message_at=from_db_opt(row["last_message_at"]),
                preview=row["preview"],
                unread=row["unread"],
                phone_number_id=row["last_phone_number_id"],
            )
            for row in rows
        ]

    async def recent_cursor(self, contact_id: int, *, keep: int) -> str | None:
        row = await self._db.one(
            "SELECT id FROM messages WHERE contact_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            (contact_id, keep),
        )
        return None if row is None else str(row["id"])


def _change(row: sqlite3.Row) -> DeskChange:
    return DeskChange(
        seq=int(row["seq"]),
        contact_id=int(row["contact_id"]),
        message_id=row["message_id"],
        added=bool(row["added"]),
        agent=row["agent"],
        entry_id=None if row["entry_id"] is None else int(row["entry_id"]),
    )

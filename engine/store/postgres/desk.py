from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
from engine.store.postgres.conversations import CONVERSATION_COLUMNS, conversation_from_row
from engine.store.postgres.db import PgDb

# The page of conversations is chosen first (conversations_by_activity), so the
# correlated subqueries, which ride messages (contact_id, created_at), run only for it.
_UNREAD_SINCE_ANYONE = """(SELECT count(*) FROM messages m
         WHERE m.contact_id = cv.contact_id AND m.direction = 'inbound'
           AND (r.read_at IS NULL OR m.created_at > r.read_at))"""
# One agent's unread: inbound messages stored after the last one they saw.
_UNREAD_FOR_READER = """(SELECT count(*) FROM messages m
         WHERE m.contact_id = cv.contact_id AND m.direction = 'inbound'
           AND m.id > coalesce((SELECT ar.last_read_id FROM agent_reads ar
                                 WHERE ar.agent = ${reader} AND ar.contact_id = cv.contact_id),
                               ''))"""

_SUMMARY = """
SELECT cv.contact_id, cv.owner, cv.agent, cv.last_inbound_at, cv.updated_at,
       cv.last_phone_number_id,
       c.wa_id, coalesce(c.wa_id, c.user_id) AS address, c.name, c.marketing_opt_in,
       {unread} AS unread,
       lm.created_at AS last_message_at, lm.text AS preview
  FROM (SELECT * FROM conversations{where}
         ORDER BY updated_at DESC, contact_id DESC LIMIT $1) cv
  JOIN contacts c ON c.id = cv.contact_id
  LEFT JOIN conversation_reads r ON r.contact_id = cv.contact_id
  LEFT JOIN LATERAL (
       SELECT m.created_at, m.text FROM messages m WHERE m.contact_id = cv.contact_id
        ORDER BY m.created_at DESC, m.id DESC LIMIT 1) lm ON true
 ORDER BY cv.updated_at DESC, cv.contact_id DESC
"""


class PgDeskRepo(DeskRepo):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, contact_id: int, agent: str) -> tuple[Conversation, bool]:
        row = await self._db.one(
            "INSERT INTO conversations (contact_id, owner, agent, updated_at)"
            " VALUES ($1, 'agent', $2, $3)"
            " ON CONFLICT (contact_id) DO UPDATE SET owner = 'agent', agent = excluded.agent,"
            " updated_at = excluded.updated_at"
            " WHERE conversations.owner = 'bot' OR conversations.agent IS NULL"
            f" RETURNING {CONVERSATION_COLUMNS}",
            contact_id,
            agent,
            self._clock.now(),
        )
        if row is not None:
            return conversation_from_row(row), True
        current = await self._db.one(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE contact_id = $1", contact_id
        )
        assert current is not None, "the upsert skipped an existing row"
        return conversation_from_row(current), False

    async def record_event(self, contact_id: int, event: ConversationEvent) -> None:
        await self._db.run(
            "INSERT INTO conversation_events (contact_id, kind, agent, flow, at)"
            " VALUES ($1, $2, $3, $4, $5)",
            contact_id,
            event.kind.value,
            event.agent,
            event.flow,
            event.at,
        )

    async def events(self, contact_id: int, *, limit: int = 100) -> list[ConversationEvent]:
        rows = await self._db.all(
            "SELECT kind, agent, flow, at FROM conversation_events WHERE contact_id = $1"
            " ORDER BY id DESC LIMIT $2",
            contact_id,
            limit,
        )
        return [
            ConversationEvent(
                kind=EventKind(row["kind"]), agent=row["agent"], flow=row["flow"], at=row["at"]
            )
            for row in reversed(rows)
        ]

    async def record_compose(self, record: ComposeRecord) -> None:
        confirmation = record.confirmed_opted_out
        await self._db.run(
            "INSERT INTO compose_messages"
            " (message_id, agent, confirmed_by, confirmed_at, idempotency_key)"
            " VALUES ($1, $2, $3, $4, $5)",
            record.message_id,
            record.agent,
            confirmation.by if confirmation else None,
            confirmation.at if confirmation else None,
            record.idempotency_key,
        )

    async def compose_record_by_key(self, agent: str, key: str) -> ComposeRecord | None:
        message_id = await self._db.val(
            "SELECT message_id FROM compose_messages WHERE agent = $1 AND idempotency_key = $2",
            agent,
            key,
        )
        if message_id is None:
            return None
        return (await self.compose_records([message_id]))[message_id]

    async def changes_after(self, seq: int, *, limit: int) -> list[DeskChange]:
        rows = await self._db.all(
            "SELECT seq, contact_id, message_id, added, agent, entry_id FROM desk_changes"
            " WHERE seq > $1 ORDER BY seq LIMIT $2",
            seq,
            limit,
        )
        return [_change(row) for row in rows]

    async def changes_among(self, seqs: Sequence[int]) -> list[DeskChange]:
        if not seqs:
            return []
        rows = await self._db.all(
            "SELECT seq, contact_id, message_id, added, agent, entry_id FROM desk_changes"
            " WHERE seq = ANY($1::bigint[]) ORDER BY seq",
            list(seqs),
        )
        return [_change(row) for row in rows]

    async def last_change(self) -> int:
        return int(await self._db.val("SELECT coalesce(max(seq), 0) FROM desk_changes"))

    async def prune_changes(self, before: datetime) -> int:
        return await self._db.run("DELETE FROM desk_changes WHERE at < $1", before)

    async def compose_records(self, message_ids: Sequence[str]) -> dict[str, ComposeRecord]:
        if not message_ids:
            return {}
        rows = await self._db.all(
            "SELECT message_id, agent, confirmed_by, confirmed_at, idempotency_key"
            " FROM compose_messages WHERE message_id = ANY($1::text[])",
            list(message_ids),
        )
        return {
            row["message_id"]: ComposeRecord(
                message_id=row["message_id"],
                agent=row["agent"],
                confirmed_opted_out=Confirmation(by=row["confirmed_by"], at=row["confirmed_at"])
                if row["confirmed_by"]
                else None,
                idempotency_key=row["idempotency_key"],
            )
            for row in rows
        }

    async def mark_read(self, contact_id: int, *, agent: str, at: datetime) -> None:
        await self._db.run(
            "INSERT INTO agent_reads (agent, contact_id, last_read_id, read_at)"
            " SELECT $1, $2, max(id), $3 FROM messages WHERE contact_id = $2"
            " HAVING max(id) IS NOT NULL"
            " ON CONFLICT (agent, contact_id) DO UPDATE SET last_read_id = excluded.last_read_id,"
            " read_at = excluded.read_at WHERE excluded.last_read_id > agent_reads.last_read_id",
            agent,
            contact_id,
            at,
        )
        await self._db.run(
            "INSERT INTO conversation_reads (contact_id, read_at, read_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (contact_id) DO UPDATE SET read_at = excluded.read_at,"
            " read_by = excluded.read_by WHERE excluded.read_at > conversation_reads.read_at",
            contact_id,
            at,
            agent,
        )

    async def summaries(self, where: SummaryFilter) -> list[ConversationSummary]:
        clauses: list[str] = []
        params: list[object] = [where.limit]
        if where.owner is not None:
            params.append(where.owner.value)
            clauses.append(f"owner = ${len(params)}")
        if where.agent is not None:
            params.append(where.agent)
            clauses.append(f"owner = 'agent' AND agent = ${len(params)}")
        if where.waiting:
            clauses.append("owner = 'agent' AND agent IS NULL")
        if where.contact_id is not None:
            params.append(where.contact_id)
            clauses.append(f"contact_id = ${len(params)}")
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if where.reader is not None:
            params.append(where.reader)
            unread = _UNREAD_FOR_READER.replace("${reader}", f"${len(params)}")
        else:
            unread = _UNREAD_SINCE_ANYONE
        rows = await self._db.all(_SUMMARY.format(where=condition, unread=unread), *params)
        return [
            ConversationSummary(
                contact_id=row["contact_id"],
                address=row["address"],
                wa_id=row["wa_id"],
                name=row["name"],
                marketing_opt_in=row["marketing_opt_in"],
                owner=Owner(row["owner"]),
                agent=row["agent"],
                last_inbound_at=row["last_inbound_at"],
                last_message_at=row["last_message_at"],
                preview=row["preview"],
                unread=row["unread"],
                phone_number_id=row["last_phone_number_id"],
            )
            for row in rows
        ]

    async def recent_cursor(self, contact_id: int, *, keep: int) -> str | None:
        message_id = await self._db.val(
            "SELECT id FROM messages WHERE contact_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
            contact_id,
            keep,
        )
        return None if message_id is None else str(message_id)


def _change(row: Any) -> DeskChange:
    return DeskChange(
        seq=int(row["seq"]),
        contact_id=int(row["contact_id"]),
        message_id=row["message_id"],
        added=bool(row["added"]),
        agent=row["agent"],
        entry_id=None if row["entry_id"] is None else int(row["entry_id"]),
    )

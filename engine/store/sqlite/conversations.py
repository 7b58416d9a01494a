from __future__ import annotations

import sqlite3
from datetime import datetime

from engine.clock import Clock
from engine.models.conversation import Conversation, Owner
from engine.store.conversations import ConversationRepo
from engine.store.sqlite.db import Db, from_db_opt, to_db


def conversation_from_row(row: sqlite3.Row) -> Conversation:
    return Conversation(
        contact_id=row["contact_id"],
        owner=Owner(row["owner"]),
        agent=row["agent"],
        last_inbound_at=from_db_opt(row["last_inbound_at"]),
    )


class SqliteConversationRepo(ConversationRepo):
    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, contact_id: int) -> Conversation:
        row = await self._db.one(
            "SELECT contact_id, owner, agent, last_inbound_at FROM conversations"
            " WHERE contact_id = ?",
            (contact_id,),
        )
        return Conversation(contact_id=contact_id) if row is None else conversation_from_row(row)

    async def record_inbound(self, contact_id: int, at: datetime) -> Conversation:
        row = await self._db.one(
            "INSERT INTO conversations (contact_id, last_inbound_at, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET"
            " last_inbound_at = max(coalesce(last_inbound_at, ''), excluded.last_inbound_at),"
            " updated_at = excluded.updated_at"
            " RETURNING contact_id, owner, agent, last_inbound_at",
            (contact_id, to_db(at), to_db(self._clock.now())),
        )
        assert row is not None
        return conversation_from_row(row)

    async def set_owner(self, contact_id: int, owner: Owner, agent: str | None) -> Conversation:
        row = await self._db.one(
            "INSERT INTO conversations (contact_id, owner, agent, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (contact_id) DO UPDATE SET owner = excluded.owner,"
            " agent = excluded.agent, updated_at = excluded.updated_at"
            " RETURNING contact_id, owner, agent, last_inbound_at",
            (contact_id, owner.value, agent, to_db(self._clock.now())),
        )
        assert row is not None
        return conversation_from_row(row)

    async def list(self, *, owner: Owner | None = None, limit: int = 100) -> list[Conversation]:
        sql = "SELECT contact_id, owner, agent, last_inbound_at FROM conversations"
        params: tuple[object, ...] = ()
        if owner is not None:
            sql += " WHERE owner = ?"
            params = (owner.value,)
        rows = await self._db.all(sql + " ORDER BY updated_at DESC LIMIT ?", (*params, limit))
        return [conversation_from_row(row) for row in rows]

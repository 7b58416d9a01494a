from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.clock import Clock
from engine.models.conversation import Conversation, Owner
from engine.store.conversations import ConversationRepo
from engine.store.postgres.db import PgDb

CONVERSATION_COLUMNS = "contact_id, owner, agent, last_inbound_at"
"""The columns of :func:`conversation_from_row`."""


def conversation_from_row(row: Mapping[str, Any]) -> Conversation:
    return Conversation(
        contact_id=row["contact_id"],
        owner=Owner(row["owner"]),
        agent=row["agent"],
        last_inbound_at=row["last_inbound_at"],
    )


class PgConversationRepo(ConversationRepo):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, contact_id: int) -> Conversation:
        row = await self._db.one(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE contact_id = $1",
            contact_id,
        )
        return Conversation(contact_id=contact_id) if row is None else conversation_from_row(row)

    async def record_inbound(self, contact_id: int, at: datetime) -> Conversation:
        # greatest() skips a NULL: a late message never moves the window back.
        row = await self._db.one(
            "INSERT INTO conversations (contact_id, last_inbound_at, updated_at)"
            " VALUES ($1, $2, $3) ON CONFLICT (contact_id) DO UPDATE SET"
            " last_inbound_at = greatest(conversations.last_inbound_at,"
            " excluded.last_inbound_at), updated_at = excluded.updated_at"
            f" RETURNING {CONVERSATION_COLUMNS}",
            contact_id,
            at,
            self._clock.now(),
        )
        assert row is not None
        return conversation_from_row(row)

    async def set_owner(self, contact_id: int, owner: Owner, agent: str | None) -> Conversation:
        row = await self._db.one(
            "INSERT INTO conversations (contact_id, owner, agent, updated_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (contact_id) DO UPDATE SET"
            " owner = excluded.owner, agent = excluded.agent, updated_at = excluded.updated_at"
            f" RETURNING {CONVERSATION_COLUMNS}",
            contact_id,
            owner.value,
            agent,
            self._clock.now(),
        )
        assert row is not None
        return conversation_from_row(row)

    async def list(self, *, owner: Owner | None = None, limit: int = 100) -> list[Conversation]:
        # Ties in activity come newest contact first, as SQLite reads its activity index
        # backwards.
        if owner is None:
            rows = await self._db.all(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations"
                " ORDER BY updated_at DESC, contact_id DESC LIMIT $1",
                limit,
            )
        else:
            rows = await self._db.all(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE owner = $2"
                " ORDER BY updated_at DESC, contact_id DESC LIMIT $1",
                limit,
                owner.value,
            )
        return [conversation_from_row(row) for row in rows]

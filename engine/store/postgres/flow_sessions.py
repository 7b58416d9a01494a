from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.store.announcements import Topic
from engine.store.flow_sessions import FlowSessionRepo, Handoff, StoredSession, Wakeup, WakeupKind
from engine.store.postgres.db import PgDb


def _wakeup(row: Mapping[str, Any]) -> Wakeup:
    return Wakeup(
        id=row["id"],
        contact_id=row["contact_id"],
        kind=WakeupKind(row["kind"]),
        wait_seq=row["wait_seq"],
        due_at=row["due_at"],
    )


class PgFlowSessionRepo(FlowSessionRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def get(self, contact_id: int) -> StoredSession | None:
        row = await self._db.one(
            "SELECT contact_id, flow_id, waiting_for, wait_seq, state, updated_at"
            " FROM flow_sessions WHERE contact_id = $1",
            contact_id,
        )
        if row is None:
            return None
        return StoredSession(
            contact_id=row["contact_id"],
            flow_id=row["flow_id"],
            waiting_for=row["waiting_for"],
            wait_seq=row["wait_seq"],
            state=row["state"],
            updated_at=row["updated_at"],
        )

    async def put(
        self,
        contact_id: int,
        *,
        flow_id: str,
        waiting_for: str,
        wait_seq: int,
        state: str,
        at: datetime,
    ) -> None:
        await self._db.run(
            "INSERT INTO flow_sessions (contact_id, flow_id, waiting_for, wait_seq, state,"
            " updated_at) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (contact_id) DO UPDATE SET flow_id = excluded.flow_id,"
            " waiting_for = excluded.waiting_for, wait_seq = excluded.wait_seq,"
            " state = excluded.state, updated_at = excluded.updated_at",
            contact_id,
            flow_id,
            waiting_for,
            wait_seq,
            state,
            at,
        )

    async def delete(self, contact_id: int) -> None:
        await self.cancel_wakeups(contact_id)
        await self._db.run("DELETE FROM flow_sessions WHERE contact_id = $1", contact_id)

    async def schedule(
        self, contact_id: int, kind: WakeupKind, wait_seq: int, due_at: datetime
    ) -> None:
        self._db.announce(Topic.WAKEUPS)
        await self._db.run(
            "INSERT INTO flow_wakeups (contact_id, kind, wait_seq, due_at) VALUES ($1, $2, $3, $4)",
            contact_id,
            kind.value,
            wait_seq,
            due_at,
        )

    async def cancel_wakeups(self, contact_id: int) -> None:
        await self._db.run("DELETE FROM flow_wakeups WHERE contact_id = $1", contact_id)

    async def claim_due(self, now: datetime, limit: int) -> list[Wakeup]:
        # The delete is the claim; SKIP LOCKED lets workers claiming beside this one take
        # other wakeups instead of waiting for these.
        rows = await self._db.all(
            "DELETE FROM flow_wakeups WHERE id IN (SELECT id FROM flow_wakeups"
            " WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, contact_id, kind, wait_seq, due_at",
            now,
            limit,
        )
        return sorted((_wakeup(row) for row in rows), key=lambda w: (w.due_at, w.id))

    async def next_due(self) -> datetime | None:
        due: datetime | None = await self._db.val("SELECT min(due_at) FROM flow_wakeups")
        return due

    async def record_handoff(
        self, contact_id: int, flow_id: str, queue: str | None, note: str | None, at: datetime
    ) -> None:
        await self._db.run(
            "INSERT INTO flow_handoffs (contact_id, flow_id, queue, note, at)"
            " VALUES ($1, $2, $3, $4, $5)",
            contact_id,
            flow_id,
            queue,
            note,
            at,
        )

    async def last_handoff(self, contact_id: int) -> Handoff | None:
        row = await self._db.one(
            "SELECT contact_id, flow_id, queue, note, at FROM flow_handoffs"
            " WHERE contact_id = $1 ORDER BY id DESC LIMIT 1",
            contact_id,
        )
        if row is None:
            return None
        return Handoff(
            contact_id=row["contact_id"],
            flow_id=row["flow_id"],
            queue=row["queue"],
            note=row["note"],
            at=row["at"],
        )

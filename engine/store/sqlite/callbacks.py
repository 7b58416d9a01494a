from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from engine.models.message import Failure, MessageStatus
from engine.store.callbacks import CallbackDelivery, CallbackOutcome, CallbackRecord, CallbackRepo
from engine.store.sqlite.db import Db, from_db, to_db


class SqliteCallbackRepo(CallbackRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def claim(
        self, owner: str, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[CallbackDelivery]:
        moment = to_db(now)
        rows = await self._db.all(
            "SELECT d.id, d.message_id, d.url, coalesce(m.recipient, c.wa_id, c.user_id) AS to_,"
            " d.status, d.at, d.failure_code, d.failure_reason, d.wamid, d.attempts"
            " FROM callback_deliveries d JOIN messages m ON m.id = d.message_id"
            " JOIN contacts c ON c.id = m.contact_id"
            " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
            " AND (d.lease_until IS NULL OR d.lease_until <= ?)"
            " AND NOT EXISTS (SELECT 1 FROM callback_deliveries e WHERE e.state = 'pending'"
            " AND e.message_id = d.message_id AND e.id < d.id)"
            " ORDER BY d.next_attempt_at, d.id LIMIT ?",
            (moment, moment, limit),
        )
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        await self._db.run(
            "UPDATE callback_deliveries SET lease_owner = ?, lease_until = ?,"
            f" attempts = attempts + 1 WHERE id IN ({','.join('?' * len(ids))})",
            (owner, to_db(lease_until), *ids),
        )
        return [
            CallbackDelivery(
                id=row["id"],
                message_id=row["message_id"],
                url=row["url"],
                to=row["to_"],
                status=MessageStatus(row["status"]),
                at=from_db(row["at"]),
                failure=Failure(code=row["failure_code"], reason=row["failure_reason"] or "")
                if row["failure_code"]
                else None,
                wamid=row["wamid"],
                attempts=row["attempts"] + 1,
            )
            for row in rows
        ]

    async def record(
        self, owner: str, outcomes: Sequence[CallbackOutcome], *, now: datetime
    ) -> None:
        moment = to_db(now)
        await self._db.many(
            "UPDATE callback_deliveries SET state = ?, last_error = ?, lease_owner = NULL,"
            " lease_until = NULL, next_attempt_at = coalesce(?, next_attempt_at),"
            " finished_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END"
            " WHERE id = ? AND state = 'pending' AND lease_owner = ?",
            [
                (
                    state,
                    outcome.error,
                    to_db(outcome.retry_at) if outcome.retry_at else None,
                    state,
                    moment,
                    outcome.delivery_id,
                    owner,
                )
                for outcome in outcomes
                for state in [
                    "delivered"
                    if outcome.delivered
                    else "pending"
                    if outcome.retry_at is not None
                    else "abandoned"
                ]
            ],
        )

    async def for_message(self, message_id: str) -> list[CallbackRecord]:
        rows = await self._db.all(
            "SELECT id, status, state, attempts, last_error FROM callback_deliveries"
            " WHERE message_id = ? ORDER BY id",
            (message_id,),
        )
        return [
            CallbackRecord(
                id=row["id"],
                status=MessageStatus(row["status"]),
                state=row["state"],
                attempts=row["attempts"],
                last_error=row["last_error"],
            )
            for row in rows
        ]

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from engine.models.message import Failure, MessageStatus
from engine.store.callbacks import CallbackDelivery, CallbackOutcome, CallbackRecord, CallbackRepo
from engine.store.postgres.db import PgDb

# The oldest pending delivery of each message only: a message's deliveries go in order.
_CLAIM = """
WITH picked AS MATERIALIZED (
    SELECT d.id FROM callback_deliveries d
    WHERE d.state = 'pending' AND d.next_attempt_at <= $1
      AND (d.lease_until IS NULL OR d.lease_until <= $1)
      AND NOT EXISTS (SELECT 1 FROM callback_deliveries e WHERE e.state = 'pending'
                      AND e.message_id = d.message_id AND e.id < d.id)
    ORDER BY d.next_attempt_at, d.id LIMIT $3
    FOR UPDATE SKIP LOCKED)
UPDATE callback_deliveries d SET lease_owner = $4, lease_until = $2, attempts = d.attempts + 1
FROM picked, messages m, contacts c
WHERE d.id = picked.id AND m.id = d.message_id AND c.id = m.contact_id
RETURNING d.id, d.message_id, d.url, coalesce(m.recipient, c.wa_id, c.user_id) AS to_,
    d.status, d.at, d.failure_code, d.failure_reason, d.wamid, d.attempts, d.next_attempt_at
"""


class PgCallbackRepo(CallbackRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def claim(
        self, owner: str, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[CallbackDelivery]:
        rows = await self._db.all(_CLAIM, now, lease_until, limit, owner)
        # RETURNING keeps no order: the claim's own, due time then age.
        rows.sort(key=lambda row: (row["next_attempt_at"], row["id"]))
        return [
            CallbackDelivery(
                id=row["id"],
                message_id=row["message_id"],
                url=row["url"],
                to=row["to_"],
                status=MessageStatus(row["status"]),
                at=row["at"],
                failure=Failure(code=row["failure_code"], reason=row["failure_reason"] or "")
                if row["failure_code"]
                else None,
                wamid=row["wamid"],
                attempts=row["attempts"],
            )
            for row in rows
        ]

    async def record(
        self, owner: str, outcomes: Sequence[CallbackOutcome], *, now: datetime
    ) -> None:
        await self._db.many(
            "UPDATE callback_deliveries SET state = $1, last_error = $2, lease_owner = NULL,"
            " lease_until = NULL, next_attempt_at = coalesce($3, next_attempt_at),"
            " finished_at = $4 WHERE id = $5 AND state = 'pending' AND lease_owner = $6",
            [
                (
                    state,
                    outcome.error,
                    outcome.retry_at,
                    None if state == "pending" else now,
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
            " WHERE message_id = $1 ORDER BY id",
            message_id,
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

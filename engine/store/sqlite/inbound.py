from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from datetime import datetime

from engine.models.message import Failure, MessageStatus
from engine.store.inbound import Handoff, InboundRepo, Outcome, UnmatchedStatus
from engine.store.sqlite.db import Db, from_db, from_db_opt, json_or_none, to_db


def _handoff(row: sqlite3.Row) -> Handoff:
    return Handoff(
        message_id=row["message_id"],
        contact_id=row["contact_id"],
        new_contact=bool(row["new_contact"]),
        attempts=row["attempts"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        handled_at=from_db_opt(row["handled_at"]),
    )


class SqliteInboundRepo(InboundRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add_handoff(
        self,
        message_id: str,
        contact_id: int,
        *,
        new_contact: bool,
        handled: tuple[Outcome, datetime] | None = None,
    ) -> None:
        outcome, at = handled if handled else (None, None)
        await self._db.run(
            "INSERT INTO inbound_handoffs (message_id, contact_id, new_contact, outcome,"
            " handled_at) VALUES (?, ?, ?, ?, ?)",
            (
                message_id,
                contact_id,
                int(new_contact),
                outcome.value if outcome else None,
                to_db(at) if at else None,
            ),
        )

    async def get_handoff(self, message_id: str) -> Handoff | None:
        row = await self._db.one(
            "SELECT * FROM inbound_handoffs WHERE message_id = ?", (message_id,)
        )
        return None if row is None else _handoff(row)

    async def contacts_waiting(self, *, exclude: Collection[int], limit: int) -> list[int]:
        skip = list(exclude)
        not_in = f"AND contact_id NOT IN ({','.join('?' * len(skip))})" if skip else ""
        rows = await self._db.all(
            "SELECT contact_id, min(message_id) AS first FROM inbound_handoffs"
            f" WHERE handled_at IS NULL {not_in}"
            " GROUP BY contact_id ORDER BY first LIMIT ?",
            (*skip, limit),
        )
        return [row["contact_id"] for row in rows]

    async def waiting(self, contact_id: int, *, limit: int) -> list[Handoff]:
        rows = await self._db.all(
            "SELECT * FROM inbound_handoffs WHERE contact_id = ? AND handled_at IS NULL"
            " ORDER BY message_id LIMIT ?",
            (contact_id, limit),
        )
        return [_handoff(row) for row in rows]

    async def count_waiting(self) -> int:
        row = await self._db.one(
            "SELECT count(*) AS n FROM inbound_handoffs WHERE handled_at IS NULL"
        )
        return int(row["n"]) if row else 0

    async def mark_handled(self, message_id: str, outcome: Outcome, at: datetime) -> None:
        await self._db.run(
            "UPDATE inbound_handoffs SET outcome = ?, handled_at = ?"
            " WHERE message_id = ? AND handled_at IS NULL",
            (outcome.value, to_db(at), message_id),
        )

    async def count_attempt(self, message_id: str) -> int:
        row = await self._db.one(
            "UPDATE inbound_handoffs SET attempts = attempts + 1 WHERE message_id = ?"
            " RETURNING attempts",
            (message_id,),
        )
        return int(row["attempts"]) if row else 0

    async def keep_unmatched_status(self, status: UnmatchedStatus) -> None:
        failure = status.failure
        await self._db.run(
            "INSERT INTO unmatched_statuses (wamid, status, at, failure_code, failure_reason,"
            " details, consent_applied, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                status.wamid,
                status.status.value,
                to_db(status.at),
                failure.code if failure else None,
                failure.reason if failure else None,
                json_or_none(status.details),
                int(status.consent_applied),
                to_db(status.received_at),
            ),
        )

    async def take_unmatched_statuses(self, wamid: str) -> list[UnmatchedStatus]:
        rows = await self._db.all(
            "DELETE FROM unmatched_statuses WHERE wamid = ? RETURNING *", (wamid,)
        )
        return [
            UnmatchedStatus(
                wamid=row["wamid"],
                status=MessageStatus(row["status"]),
                at=from_db(row["at"]),
                received_at=from_db(row["received_at"]),
                failure=Failure(code=row["failure_code"], reason=row["failure_reason"] or "")
                if row["failure_code"]
                else None,
                details=json.loads(row["details"]) if row["details"] else None,
                consent_applied=bool(row["consent_applied"]),
            )
            for row in sorted(rows, key=lambda row: int(row["id"]))
        ]

    async def prune_unmatched_statuses(self, received_before: datetime) -> int:
        return await self._db.run(
            "DELETE FROM unmatched_statuses WHERE received_at < ?", (to_db(received_before),)
        )

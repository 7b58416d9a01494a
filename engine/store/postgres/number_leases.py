from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from engine.store.number_leases import NumberLeaseRepo
from engine.store.postgres.db import PgDb


class PgNumberLeaseRepo(NumberLeaseRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def hold(
        self,
        owner: str,
        wanted: Collection[str],
        *,
        now: datetime,
        until: datetime,
        default_number: str,
        scan: bool = True,
    ) -> list[str]:
        # Numbers with due rows that no live lease covers (rare: a new number, or one
        # whose worker died); the scan stops at the first few.
        orphans = (
            []
            if not scan
            else await self._db.all(
                "SELECT DISTINCT coalesce(m.phone_number_id, $1) AS number FROM messages m"
                " WHERE m.status = 'queued' AND m.next_attempt_at <= $2 AND NOT EXISTS ("
                " SELECT 1 FROM number_leases l WHERE l.phone_number_id ="
                " coalesce(m.phone_number_id, $1) AND l.expires_at > $2) LIMIT 16",
                default_number,
                now,
            )
        )
        # In one order, so that two workers taking the same numbers never deadlock.
        numbers = sorted({*wanted, *(str(row["number"]) for row in orphans)})
        # Ours: renewed; lapsed or absent: taken; another's live lease: left alone. Two
        # workers after one number meet on its row: the second one's update waits for
        # the first, then fails to serialize and runs again, seeing the lease taken.
        await self._db.run(
            "INSERT INTO number_leases (phone_number_id, owner, expires_at)"
            " SELECT number, $2, $3 FROM unnest($1::text[]) AS number"
            " ON CONFLICT (phone_number_id) DO UPDATE SET owner = excluded.owner,"
            " expires_at = excluded.expires_at"
            " WHERE number_leases.owner = excluded.owner OR number_leases.expires_at <= $4",
            numbers,
            owner,
            until,
            now,
        )
        rows = await self._db.all(
            "UPDATE number_leases SET expires_at = $1 WHERE owner = $2 RETURNING phone_number_id",
            until,
            owner,
        )
        return sorted(str(row["phone_number_id"]) for row in rows)

    async def release(self, owner: str) -> None:
        await self._db.run("DELETE FROM number_leases WHERE owner = $1", owner)

    async def holders(self, now: datetime) -> dict[str, str]:
        rows = await self._db.all(
            "SELECT phone_number_id, owner FROM number_leases WHERE expires_at > $1", now
        )
        return {str(row["phone_number_id"]): str(row["owner"]) for row in rows}

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from engine.store.number_leases import NumberLeaseRepo
from engine.store.sqlite.db import Db, to_db


class SqliteNumberLeaseRepo(NumberLeaseRepo):
    def __init__(self, db: Db) -> None:
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
        moment, deadline = to_db(now), to_db(until)
        # Numbers with due rows that no live lease covers (rare: a new number, or one
        # whose worker died); the scan stops at the first few.
        orphans = (
            []
            if not scan
            else await self._db.all(
                "SELECT DISTINCT coalesce(m.phone_number_id, ?) AS number FROM messages m"
                " WHERE m.status = 'queued' AND m.next_attempt_at <= ? AND NOT EXISTS ("
                " SELECT 1 FROM number_leases l WHERE l.phone_number_id ="
                " coalesce(m.phone_number_id, ?) AND l.expires_at > ?) LIMIT 16",
                (default_number, moment, default_number, moment),
            )
        )
        numbers = sorted({*wanted, *(str(row["number"]) for row in orphans)})
        # Ours: renewed; lapsed or absent: taken; another's live lease: left alone.
        await self._db.run(
            "INSERT INTO number_leases (phone_number_id, owner, expires_at)"
            " SELECT value, ?, ? FROM json_each(?) WHERE true"
            " ON CONFLICT (phone_number_id) DO UPDATE SET owner = excluded.owner,"
            " expires_at = excluded.expires_at"
            " WHERE number_leases.owner = excluded.owner OR number_leases.expires_at <= ?",
            (owner, deadline, json.dumps(numbers), moment),
        )
        await self._db.run(
            "UPDATE number_leases SET expires_at = ? WHERE owner = ?", (deadline, owner)
        )
        rows = await self._db.all(
            "SELECT phone_number_id FROM number_leases WHERE owner = ? ORDER BY 1", (owner,)
        )
        return [str(row["phone_number_id"]) for row in rows]

    async def release(self, owner: str) -> None:
        await self._db.run("DELETE FROM number_leases WHERE owner = ?", (owner,))

    async def holders(self, now: datetime) -> dict[str, str]:
        rows = await self._db.all(
            "SELECT phone_number_id, owner FROM number_leases WHERE expires_at > ?",
            (to_db(now),),
        )
        return {str(row["phone_number_id"]): str(row["owner"]) for row in rows}

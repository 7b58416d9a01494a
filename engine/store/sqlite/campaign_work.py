from __future__ import annotations

import sqlite3
from datetime import datetime

from engine.store.announcements import Topic
from engine.store.campaign_work import CampaignWorkRepo, WorkItem, WorkKind
from engine.store.sqlite.db import Db, from_db, to_db

_COLUMNS = "id, kind, subject, due_at, step, version, attempts"


def _item(row: sqlite3.Row) -> WorkItem:
    return WorkItem(
        id=row["id"],
        kind=WorkKind(row["kind"]),
        subject=row["subject"],
        due_at=from_db(row["due_at"]),
        step=row["step"],
        version=row["version"],
        attempts=row["attempts"],
    )


class SqliteCampaignWorkRepo(CampaignWorkRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def schedule(
        self,
        kind: WorkKind,
        subject: str,
        due_at: datetime,
        *,
        step: int | None = None,
        version: int | None = None,
    ) -> None:
        self._db.announce(Topic.CAMPAIGNS)
        await self._db.run(
            "INSERT INTO campaign_work (kind, subject, due_at, step, version)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, subject) DO UPDATE SET"
            " due_at = excluded.due_at, step = excluded.step, version = excluded.version,"
            " attempts = 0, lease_owner = NULL, lease_until = NULL, last_error = NULL",
            (kind.value, subject, to_db(due_at), step, version),
        )

    async def claim(
        self, owner: str, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[WorkItem]:
        moment = to_db(now)
        # The writer runs one job at a time, so the sub-select and the update are atomic
        # here; PostgreSQL selects with FOR UPDATE SKIP LOCKED instead (as the outbox).
        rows = await self._db.all(
            "UPDATE campaign_work SET lease_owner = ?, lease_until = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM campaign_work WHERE due_at <= ?"
            " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY due_at, id LIMIT ?)"
            f" RETURNING {_COLUMNS}",
            (owner, to_db(lease_until), moment, moment, limit),
        )
        return sorted((_item(row) for row in rows), key=lambda item: (item.due_at, item.id))

    async def held(
        self, owner: str, item_id: int, *, lease_until: datetime | None = None
    ) -> WorkItem | None:
        if lease_until is not None:
            await self._db.run(
                "UPDATE campaign_work SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                (to_db(lease_until), item_id, owner),
            )
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM campaign_work WHERE id = ? AND lease_owner = ?",
            (item_id, owner),
        )
        return None if row is None else _item(row)

    async def retry_later(self, owner: str, item_id: int, due_at: datetime, error: str) -> None:
        await self._db.run(
            "UPDATE campaign_work SET due_at = ?, last_error = ?, lease_owner = NULL,"
            " lease_until = NULL WHERE id = ? AND lease_owner = ?",
            (to_db(due_at), error, item_id, owner),
        )

    async def cancel(self, kind: WorkKind, subject: str) -> None:
        await self._db.run(
            "DELETE FROM campaign_work WHERE kind = ? AND subject = ?", (kind.value, subject)
        )

    async def get(self, kind: WorkKind, subject: str) -> WorkItem | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM campaign_work WHERE kind = ? AND subject = ?",
            (kind.value, subject),
        )
        return None if row is None else _item(row)

    async def next_due(self) -> datetime | None:
        row = await self._db.one("SELECT min(due_at) AS due FROM campaign_work")
        return None if row is None or row["due"] is None else from_db(row["due"])

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.store.announcements import Topic
from engine.store.campaign_work import CampaignWorkRepo, WorkItem, WorkKind
from engine.store.postgres.db import PgDb

_COLUMNS = "id, kind, subject, due_at, step, version, attempts"
_CLAIMED_COLUMNS = "w.id, w.kind, w.subject, w.due_at, w.step, w.version, w.attempts"


def _item(row: Mapping[str, Any]) -> WorkItem:
    return WorkItem(
        id=row["id"],
        kind=WorkKind(row["kind"]),
        subject=row["subject"],
        due_at=row["due_at"],
        step=row["step"],
        version=row["version"],
        attempts=row["attempts"],
    )


class PgCampaignWorkRepo(CampaignWorkRepo):
    def __init__(self, db: PgDb) -> None:
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
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, subject) DO UPDATE SET"
            " due_at = excluded.due_at, step = excluded.step, version = excluded.version,"
            " attempts = 0, lease_owner = NULL, lease_until = NULL, last_error = NULL",
            kind.value,
            subject,
            due_at,
            step,
            version,
        )

    async def claim(
        self, owner: str, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[WorkItem]:
        # Several workers claim at once: SKIP LOCKED passes over the items another claim
        # is taking, and the CTE is materialized so the locked set is chosen exactly once.
        rows = await self._db.all(
            "WITH picked AS MATERIALIZED (SELECT id FROM campaign_work WHERE due_at <= $3"
            " AND (lease_until IS NULL OR lease_until <= $3) ORDER BY due_at, id LIMIT $4"
            " FOR UPDATE SKIP LOCKED)"
            " UPDATE campaign_work w SET lease_owner = $1, lease_until = $2,"
            " attempts = w.attempts + 1 FROM picked WHERE w.id = picked.id"
            f" RETURNING {_CLAIMED_COLUMNS}",
            owner,
            lease_until,
            now,
            limit,
        )
        return sorted((_item(row) for row in rows), key=lambda item: (item.due_at, item.id))

    async def held(
        self, owner: str, item_id: int, *, lease_until: datetime | None = None
    ) -> WorkItem | None:
        if lease_until is not None:
            await self._db.run(
                "UPDATE campaign_work SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
                lease_until,
                item_id,
                owner,
            )
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM campaign_work WHERE id = $1 AND lease_owner = $2",
            item_id,
            owner,
        )
        return None if row is None else _item(row)

    async def retry_later(self, owner: str, item_id: int, due_at: datetime, error: str) -> None:
        await self._db.run(
            "UPDATE campaign_work SET due_at = $1, last_error = $2, lease_owner = NULL,"
            " lease_until = NULL WHERE id = $3 AND lease_owner = $4",
            due_at,
            error,
            item_id,
            owner,
        )

    async def cancel(self, kind: WorkKind, subject: str) -> None:
        await self._db.run(
            "DELETE FROM campaign_work WHERE kind = $1 AND subject = $2", kind.value, subject
        )

    async def get(self, kind: WorkKind, subject: str) -> WorkItem | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM campaign_work WHERE kind = $1 AND subject = $2",
            kind.value,
            subject,
        )
        return None if row is None else _item(row)

    async def next_due(self) -> datetime | None:
        due: datetime | None = await self._db.val("SELECT min(due_at) FROM campaign_work")
        return due

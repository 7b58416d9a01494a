from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.models.number import BusinessNumber, HealthUpdate, LimitTier, Quality
from engine.store.numbers import BUSINESS_INITIATED, NewNumber, NumberRepo, display_digits
from engine.store.postgres.db import PgDb

_COLUMNS = (
    "phone_number_id, display_phone_number, rate_limit, quality_rating, messaging_limit_tier,"
    " flagged, registered_at, health_updated_at"
)
_DEFAULT = "(SELECT phone_number_id FROM business_numbers ORDER BY registered_seq LIMIT 1)"
_REACHED = (
    " FROM messages m WHERE m.direction = 'outbound' AND m.created_at >= $1"
    " AND m.channel = ANY($3::text[])"
    " AND m.status NOT IN ('failed', 'skipped')"
    f" AND (m.phone_number_id = $2 OR (m.phone_number_id IS NULL AND $2 = {_DEFAULT}))"
)


def _number(row: Mapping[str, Any]) -> BusinessNumber:
    tier = row["messaging_limit_tier"]
    return BusinessNumber(
        phone_number_id=row["phone_number_id"],
        display_phone_number=row["display_phone_number"],
        rate_limit=row["rate_limit"],
        quality_rating=Quality(row["quality_rating"]),
        messaging_limit_tier=LimitTier(tier) if tier else None,
        flagged=row["flagged"],
        registered_at=row["registered_at"],
        health_updated_at=row["health_updated_at"],
    )


class PgNumberRepo(NumberRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def register(self, number: NewNumber, *, at: datetime) -> BusinessNumber | None:
        row = await self._db.one(
            "INSERT INTO business_numbers (phone_number_id, display_phone_number,"
            " display_digits, rate_limit, registered_at) VALUES ($1, $2, $3, $4, $5)"
            f" ON CONFLICT (phone_number_id) DO NOTHING RETURNING {_COLUMNS}",
            number.phone_number_id,
            number.display_phone_number,
            display_digits(number.display_phone_number),
            number.rate_limit,
            at,
        )
        return None if row is None else _number(row)

    async def get(self, phone_number_id: str) -> BusinessNumber | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM business_numbers WHERE phone_number_id = $1",
            phone_number_id,
        )
        return None if row is None else _number(row)

    async def list(self) -> list[BusinessNumber]:
        rows = await self._db.all(
            f"SELECT {_COLUMNS} FROM business_numbers ORDER BY registered_seq"
        )
        return [_number(row) for row in rows]

    async def default(self) -> str | None:
        value = await self._db.val(f"SELECT {_DEFAULT}")
        return None if value is None else str(value)

    async def by_display(self, display_phone_number: str) -> BusinessNumber | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM business_numbers WHERE display_digits = $1"
            " ORDER BY registered_seq LIMIT 1",
            display_digits(display_phone_number),
        )
        return None if row is None else _number(row)

    async def update_health(
        self, phone_number_id: str, update: HealthUpdate, *, at: datetime
    ) -> BusinessNumber | None:
        row = await self._db.one(
            "UPDATE business_numbers SET quality_rating = coalesce($1, quality_rating),"
            " messaging_limit_tier = coalesce($2, messaging_limit_tier),"
            " flagged = coalesce($3, flagged), health_updated_at = $4"
            f" WHERE phone_number_id = $5 RETURNING {_COLUMNS}",
            update.quality_rating.value if update.quality_rating else None,
            update.messaging_limit_tier.value if update.messaging_limit_tier else None,
            update.flagged,
            at,
            phone_number_id,
        )
        return None if row is None else _number(row)

    async def record_inbound(self, contact_id: int, phone_number_id: str, at: datetime) -> None:
        await self._db.run(
            "INSERT INTO number_windows (contact_id, phone_number_id, last_inbound_at)"
            " VALUES ($1, $2, $3) ON CONFLICT (contact_id, phone_number_id) DO UPDATE SET"
            " last_inbound_at = greatest(number_windows.last_inbound_at,"
            " excluded.last_inbound_at)",
            contact_id,
            phone_number_id,
            at,
        )
        # A message Meta delivers late does not move the conversation to its number.
        await self._db.run(
            "UPDATE conversations SET last_phone_number_id = $1"
            " WHERE contact_id = $2 AND (last_inbound_at IS NULL OR last_inbound_at <= $3)",
            phone_number_id,
            contact_id,
            at,
        )

    async def last_inbound(self, contact_id: int, phone_number_id: str) -> datetime | None:
        value = await self._db.val(
            "SELECT last_inbound_at FROM number_windows"
            " WHERE contact_id = $1 AND phone_number_id = $2",
            contact_id,
            phone_number_id,
        )
        return value if isinstance(value, datetime) else None

    async def last_written_to(self, contact_id: int) -> str | None:
        value = await self._db.val(
            "SELECT last_phone_number_id FROM conversations WHERE contact_id = $1", contact_id
        )
        return None if value is None else str(value)

    async def of_message(self, message_id: str) -> str | None:
        value = await self._db.val("SELECT phone_number_id FROM messages WHERE id = $1", message_id)
        return None if value is None else str(value)

    async def customers_reached(self, phone_number_id: str, *, since: datetime) -> int:
        value = await self._db.val(
            f"SELECT count(DISTINCT m.contact_id){_REACHED}",
            since,
            phone_number_id,
            list(BUSINESS_INITIATED),
        )
        return int(value or 0)

    async def oldest_reach(self, phone_number_id: str, *, since: datetime) -> datetime | None:
        value = await self._db.val(
            f"SELECT min(m.created_at){_REACHED}", since, phone_number_id, list(BUSINESS_INITIATED)
        )
        return value if isinstance(value, datetime) else None

from __future__ import annotations

import sqlite3
from datetime import datetime

from engine.models.number import BusinessNumber, HealthUpdate, LimitTier, Quality
from engine.store.numbers import BUSINESS_INITIATED, NewNumber, NumberRepo, display_digits
from engine.store.sqlite.db import Db, from_db, from_db_opt, to_db

_COLUMNS = (
    "phone_number_id, display_phone_number, rate_limit, quality_rating, messaging_limit_tier,"
    " flagged, registered_at, health_updated_at"
)
_DEFAULT = "(SELECT phone_number_id FROM business_numbers ORDER BY registered_seq LIMIT 1)"
_REACHED = (
    " FROM messages m WHERE m.direction = 'outbound' AND m.created_at >= ?"
    " AND m.channel IN ('api', 'broadcast', 'sequence')"
    " AND m.status NOT IN ('failed', 'skipped')"
    f" AND (m.phone_number_id = ? OR (m.phone_number_id IS NULL AND ? = {_DEFAULT}))"
)
assert all(f"'{channel}'" in _REACHED for channel in BUSINESS_INITIATED)


def _number(row: sqlite3.Row) -> BusinessNumber:
    tier = row["messaging_limit_tier"]
    return BusinessNumber(
        phone_number_id=row["phone_number_id"],
        display_phone_number=row["display_phone_number"],
        rate_limit=row["rate_limit"],
        quality_rating=Quality(row["quality_rating"]),
        messaging_limit_tier=LimitTier(tier) if tier else None,
        flagged=bool(row["flagged"]),
        registered_at=from_db(row["registered_at"]),
        health_updated_at=from_db_opt(row["health_updated_at"]),
    )


class SqliteNumberRepo(NumberRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def register(self, number: NewNumber, *, at: datetime) -> BusinessNumber | None:
        row = await self._db.one(
            "INSERT INTO business_numbers (phone_number_id, display_phone_number,"
            " display_digits, rate_limit, registered_seq, registered_at)"
            " SELECT ?, ?, ?, ?, coalesce(max(registered_seq), 0) + 1, ? FROM business_numbers"
            f" WHERE true ON CONFLICT (phone_number_id) DO NOTHING RETURNING {_COLUMNS}",
            (
                number.phone_number_id,
                number.display_phone_number,
                display_digits(number.display_phone_number),
                number.rate_limit,
                to_db(at),
            ),
        )
        return None if row is None else _number(row)

    async def get(self, phone_number_id: str) -> BusinessNumber | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM business_numbers WHERE phone_number_id = ?",
            (phone_number_id,),
        )
        return None if row is None else _number(row)

    async def list(self) -> list[BusinessNumber]:
        rows = await self._db.all(
            f"SELECT {_COLUMNS} FROM business_numbers ORDER BY registered_seq"
        )
        return [_number(row) for row in rows]

    async def default(self) -> str | None:
        row = await self._db.one(f"SELECT {_DEFAULT} AS number")
        return None if row is None else row["number"]

    async def by_display(self, display_phone_number: str) -> BusinessNumber | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM business_numbers WHERE display_digits = ?"
            " ORDER BY registered_seq LIMIT 1",
            (display_digits(display_phone_number),),
        )
        return None if row is None else _number(row)

    async def update_health(
        self, phone_number_id: str, update: HealthUpdate, *, at: datetime
    ) -> BusinessNumber | None:
        flagged = None if update.flagged is None else int(update.flagged)
        row = await self._db.one(
            "UPDATE business_numbers SET quality_rating = coalesce(?, quality_rating),"
            " messaging_limit_tier = coalesce(?, messaging_limit_tier),"
            " flagged = coalesce(?, flagged), health_updated_at = ?"
            f" WHERE phone_number_id = ? RETURNING {_COLUMNS}",
            (
                update.quality_rating.value if update.quality_rating else None,
                update.messaging_limit_tier.value if update.messaging_limit_tier else None,
                flagged,
                to_db(at),
                phone_number_id,
            ),
        )
        return None if row is None else _number(row)

    async def record_inbound(self, contact_id: int, phone_number_id: str, at: datetime) -> None:
        moment = to_db(at)
        await self._db.run(
            "INSERT INTO number_windows (contact_id, phone_number_id, last_inbound_at)"
            " VALUES (?, ?, ?) ON CONFLICT (contact_id, phone_number_id) DO UPDATE SET"
            " last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
            (contact_id, phone_number_id, moment),
        )
        # A message Meta delivers late does not move the conversation to its number.
        await self._db.run(
            "UPDATE conversations SET last_phone_number_id = ?"
            " WHERE contact_id = ? AND coalesce(last_inbound_at, '') <= ?",
            (phone_number_id, contact_id, moment),
        )

    async def last_inbound(self, contact_id: int, phone_number_id: str) -> datetime | None:
        row = await self._db.one(
            "SELECT last_inbound_at FROM number_windows"
            " WHERE contact_id = ? AND phone_number_id = ?",
            (contact_id, phone_number_id),
        )
        return None if row is None else from_db(row["last_inbound_at"])

    async def last_written_to(self, contact_id: int) -> str | None:
        row = await self._db.one(
            "SELECT last_phone_number_id FROM conversations WHERE contact_id = ?", (contact_id,)
        )
        return None if row is None else row["last_phone_number_id"]

    async def of_message(self, message_id: str) -> str | None:
        row = await self._db.one("SELECT phone_number_id FROM messages WHERE id = ?", (message_id,))
        return None if row is None else row["phone_number_id"]

    async def customers_reached(self, phone_number_id: str, *, since: datetime) -> int:
        row = await self._db.one(
            f"SELECT count(DISTINCT m.contact_id) AS n{_REACHED}",
            (to_db(since), phone_number_id, phone_number_id),
        )
        return 0 if row is None else int(row["n"])

    async def oldest_reach(self, phone_number_id: str, *, since: datetime) -> datetime | None:
        row = await self._db.one(
            f"SELECT min(m.created_at) AS at{_REACHED}",
            (to_db(since), phone_number_id, phone_number_id),
        )
        return None if row is None else from_db_opt(row["at"])

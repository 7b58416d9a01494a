from __future__ import annotations

from engine.store.postgres.db import PgDb
from engine.store.settings import SettingRepo


class PgSettingRepo(SettingRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        value = await self._db.val("SELECT value FROM app_settings WHERE key = $1", key)
        return None if value is None else str(value)

    async def put(self, key: str, value: str) -> None:
        await self._db.run(
            "INSERT INTO app_settings (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

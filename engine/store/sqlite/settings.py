from __future__ import annotations

from engine.store.settings import SettingRepo
from engine.store.sqlite.db import Db


class SqliteSettingRepo(SettingRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        row = await self._db.one("SELECT value FROM app_settings WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def put(self, key: str, value: str) -> None:
        await self._db.run(
            "INSERT INTO app_settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

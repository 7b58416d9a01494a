from __future__ import annotations

from engine.clock import Clock
from engine.models.template import Template, TemplateCategory
from engine.store.failures import AlreadyExists
from engine.store.sqlite.db import Db, to_db
from engine.store.templates import TemplateRepo

_INSERT = (
    "INSERT INTO templates (name, language, category, definition, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def _row(template: Template, now: str) -> tuple[str, ...]:
    definition = template.model_dump_json()
    return (template.name, template.language, template.category.value, definition, now, now)


class SqliteTemplateRepo(TemplateRepo):
    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, name: str, language: str) -> Template | None:
        row = await self._db.one(
            "SELECT definition FROM templates WHERE name = ? AND language = ?", (name, language)
        )
        return None if row is None else Template.model_validate_json(row["definition"])

    async def create(self, template: Template) -> Template:
        now = to_db(self._clock.now())
        inserted = await self._db.run(
            _INSERT + " ON CONFLICT DO NOTHING",
            _row(template, now),
        )
        if not inserted:
            raise AlreadyExists(f"template {template.name} ({template.language}) exists")
        return template

    async def put(self, template: Template) -> bool:
        existed = await self._db.one(
            "SELECT 1 FROM templates WHERE name = ? AND language = ?",
            (template.name, template.language),
        )
        now = to_db(self._clock.now())
        await self._db.run(
            _INSERT + " ON CONFLICT (name, language) DO UPDATE SET category = excluded.category,"
            " definition = excluded.definition, updated_at = excluded.updated_at",
            _row(template, now),
        )
        return existed is None

    async def delete(self, name: str, language: str) -> bool:
        deleted = await self._db.run(
            "DELETE FROM templates WHERE name = ? AND language = ?", (name, language)
        )
        return deleted > 0

    async def list(self, *, category: TemplateCategory | None = None) -> list[Template]:
        if category is None:
            rows = await self._db.all("SELECT definition FROM templates ORDER BY name, language")
        else:
            rows = await self._db.all(
                "SELECT definition FROM templates WHERE category = ? ORDER BY name, language",
                (category.value,),
            )
        return [Template.model_validate_json(row["definition"]) for row in rows]

from __future__ import annotations

from typing import Any

from engine.clock import Clock
from engine.models.template import Template, TemplateCategory
from engine.store.failures import AlreadyExists
from engine.store.postgres.db import PgDb
from engine.store.templates import TemplateRepo

_INSERT = (
    "INSERT INTO templates (name, language, category, definition, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $5)"
)
_ORDER = "ORDER BY name, language"


def _values(template: Template, clock: Clock) -> tuple[Any, ...]:
    definition = template.model_dump(mode="json")
    return (template.name, template.language, template.category.value, definition, clock.now())


class PgTemplateRepo(TemplateRepo):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, name: str, language: str) -> Template | None:
        definition = await self._db.val(
            "SELECT definition FROM templates WHERE name = $1 AND language = $2", name, language
        )
        return None if definition is None else Template.model_validate(definition)

    async def create(self, template: Template) -> Template:
        inserted = await self._db.run(
            _INSERT + " ON CONFLICT DO NOTHING", *_values(template, self._clock)
        )
        if not inserted:
            raise AlreadyExists(f"template {template.name} ({template.language}) exists")
        return template

    async def put(self, template: Template) -> bool:
        # xmax is 0 on a row this statement inserted, and set on one it updated: one
        # statement answers "created?" without a read that a concurrent put could outdate.
        created: bool = await self._db.val(
            _INSERT + " ON CONFLICT (name, language) DO UPDATE SET category = excluded.category,"
            " definition = excluded.definition, updated_at = excluded.updated_at"
            " RETURNING xmax = 0",
            *_values(template, self._clock),
        )
        return created

    async def delete(self, name: str, language: str) -> bool:
        deleted = await self._db.run(
            "DELETE FROM templates WHERE name = $1 AND language = $2", name, language
        )
        return deleted > 0

    async def list(self, *, category: TemplateCategory | None = None) -> list[Template]:
        if category is None:
            rows = await self._db.all(f"SELECT definition FROM templates {_ORDER}")
        else:
            rows = await self._db.all(
                f"SELECT definition FROM templates WHERE category = $1 {_ORDER}", category.value
            )
        return [Template.model_validate(row["definition"]) for row in rows]

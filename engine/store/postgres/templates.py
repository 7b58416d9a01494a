from __future__ import annotations

from typing import Any

from engine.clock import Clock
from engine.models.template import Template, TemplateCategory
from engine.store.announcements import Topic
from engine.store.failures import AlreadyExists
from engine.store.postgres.db import PgDb
from engine.store.templates import TemplateRepo, UnknownTemplate, wait_key

_INSERT = (
    "INSERT INTO templates (name, language, category, definition, created_at, updated_at,"
    " status, meta_id) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)"
)
_ORDER = "ORDER BY name, language"


def _values(template: Template, clock: Clock) -> tuple[Any, ...]:
    definition = template.model_dump(mode="json")
    return (
        template.name,
        template.language,
        template.category.value,
        definition,
        clock.now(),
        template.status,
        template.id,
    )


class PgTemplateRepo(TemplateRepo):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, name: str, language: str) -> Template | None:
        definition = await self._db.val(
            "SELECT definition FROM templates WHERE name = $1 AND language = $2", name, language
        )
        return None if definition is None else Template.model_validate(definition)

    async def get_by_meta_id(self, meta_id: str) -> Template | None:
        definition = await self._db.val(
            "SELECT definition FROM templates WHERE meta_id = $1 LIMIT 1", meta_id
        )
        return None if definition is None else Template.model_validate(definition)

    async def create(self, template: Template) -> Template:
        inserted = await self._db.run(
            _INSERT + " ON CONFLICT DO NOTHING", *_values(template, self._clock)
        )
        if not inserted:
            raise AlreadyExists(f"template {template.name} ({template.language}) exists")
        await self._settled(template)
        return template

    async def put(self, template: Template) -> bool:
        # xmax is 0 on a row this statement inserted, and set on one it updated: one
        # statement answers "created?" without a read that a concurrent put could outdate.
        created: bool = await self._db.val(
            _INSERT + " ON CONFLICT (name, language) DO UPDATE SET category = excluded.category,"
            " definition = excluded.definition, updated_at = excluded.updated_at,"
            " status = excluded.status, meta_id = excluded.meta_id"
            " RETURNING xmax = 0",
            *_values(template, self._clock),
        )
        await self._settled(template)
        return created

    async def _settled(self, template: Template) -> None:
        """The catalogue holds ``template`` now: it is unknown no more, and when approved
        the messages waiting for it are due."""
        await self._db.run(
            "DELETE FROM unknown_templates WHERE name = $1 AND language = $2",
            template.name,
            template.language,
        )
        if template.approved:
            released = await self._db.run(
                "UPDATE messages SET template_wait = NULL, next_attempt_at = $1"
                " WHERE template_wait = $2 AND status = 'queued'",
                self._clock.now(),
                wait_key(template.name, template.language),
            )
            if released:
                self._db.announce(Topic.OUTBOX)

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

    async def remember_unknown(self, unknown: UnknownTemplate) -> None:
        await self._db.run(
            "INSERT INTO unknown_templates (name, language, meta_id, status, category,"
            " quality_score, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (name, language) DO UPDATE SET"
            " meta_id = coalesce(excluded.meta_id, unknown_templates.meta_id),"
            " status = coalesce(excluded.status, unknown_templates.status),"
            " category = coalesce(excluded.category, unknown_templates.category),"
            " quality_score = coalesce(excluded.quality_score, unknown_templates.quality_score),"
            " updated_at = excluded.updated_at",
            unknown.name,
            unknown.language,
            unknown.meta_id,
            unknown.status,
            unknown.category,
            unknown.quality_score,
            unknown.updated_at or self._clock.now(),
        )

    async def unknown(self, name: str, language: str) -> UnknownTemplate | None:
        row = await self._db.one(
            "SELECT * FROM unknown_templates WHERE name = $1 AND language = $2", name, language
        )
        if row is None:
            return None
        return UnknownTemplate(
            name=row["name"],
            language=row["language"],
            meta_id=row["meta_id"],
            status=row["status"],
            category=row["category"],
            quality_score=row["quality_score"],
            updated_at=row["updated_at"],
        )

    async def waiting(self, name: str, language: str) -> int:
        count = await self._db.val(
            "SELECT count(*) FROM messages WHERE template_wait = $1 AND status = 'queued'",
            wait_key(name, language),
        )
        return int(count or 0)

from __future__ import annotations

from engine.clock import Clock
from engine.models.template import Template, TemplateCategory
from engine.store.announcements import Topic
from engine.store.failures import AlreadyExists
from engine.store.sqlite.db import Db, from_db_opt, to_db
from engine.store.templates import TemplateRepo, UnknownTemplate, wait_key

_INSERT = (
    "INSERT INTO templates (name, language, category, definition, created_at, updated_at,"
    " status, meta_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _row(template: Template, now: str) -> tuple[str | None, ...]:
    definition = template.model_dump_json()
    return (
        template.name,
        template.language,
        template.category.value,
        definition,
        now,
        now,
        template.status,
        template.id,
    )


class SqliteTemplateRepo(TemplateRepo):
    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, name: str, language: str) -> Template | None:
        row = await self._db.one(
            "SELECT definition FROM templates WHERE name = ? AND language = ?", (name, language)
        )
        return None if row is None else Template.model_validate_json(row["definition"])

    async def get_by_meta_id(self, meta_id: str) -> Template | None:
        row = await self._db.one(
            "SELECT definition FROM templates WHERE meta_id = ? LIMIT 1", (meta_id,)
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
        await self._settled(template, now)
        return template

    async def put(self, template: Template) -> bool:
        existed = await self._db.one(
            "SELECT 1 FROM templates WHERE name = ? AND language = ?",
            (template.name, template.language),
        )
        now = to_db(self._clock.now())
        await self._db.run(
            _INSERT + " ON CONFLICT (name, language) DO UPDATE SET category = excluded.category,"
            " definition = excluded.definition, updated_at = excluded.updated_at,"
            " status = excluded.status, meta_id = excluded.meta_id",
            _row(template, now),
        )
        await self._settled(template, now)
        return existed is None

    async def _settled(self, template: Template, now: str) -> None:
        """The catalogue holds ``template`` now: it is unknown no more, and when approved
        the messages waiting for it are due."""
        await self._db.run(
            "DELETE FROM unknown_templates WHERE name = ? AND language = ?",
            (template.name, template.language),
        )
        if template.approved:
            released = await self._db.run(
                "UPDATE messages SET template_wait = NULL, next_attempt_at = ?"
                " WHERE template_wait = ? AND status = 'queued'",
                (now, wait_key(template.name, template.language)),
            )
            if released:
                self._db.announce(Topic.OUTBOX)

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

    async def remember_unknown(self, unknown: UnknownTemplate) -> None:
        await self._db.run(
            "INSERT INTO unknown_templates (name, language, meta_id, status, category,"
            " quality_score, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name, language) DO UPDATE SET"
            " meta_id = coalesce(excluded.meta_id, meta_id),"
            " status = coalesce(excluded.status, status),"
            " category = coalesce(excluded.category, category),"
            " quality_score = coalesce(excluded.quality_score, quality_score),"
            " updated_at = excluded.updated_at",
            (
                unknown.name,
                unknown.language,
                unknown.meta_id,
                unknown.status,
                unknown.category,
                unknown.quality_score,
                to_db(unknown.updated_at or self._clock.now()),
            ),
        )

    async def unknown(self, name: str, language: str) -> UnknownTemplate | None:
        row = await self._db.one(
            "SELECT * FROM unknown_templates WHERE name = ? AND language = ?", (name, language)
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
            updated_at=from_db_opt(row["updated_at"]),
        )

    async def waiting(self, name: str, language: str) -> int:
        row = await self._db.one(
            "SELECT count(*) AS n FROM messages WHERE template_wait = ? AND status = 'queued'",
            (wait_key(name, language),),
        )
        return int(row["n"]) if row else 0

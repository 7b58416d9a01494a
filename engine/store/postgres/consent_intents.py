from __future__ import annotations

from datetime import datetime

import asyncpg

from engine.store.consent_intents import ConsentIntentRepo, IntentAnswer, IntentMode, RaisedIntent
from engine.store.postgres.db import PgDb

_COLUMNS = (
    "contact_id, message_id, wamid, text, language, evidence, mode, raised_at, answer, answered_at"
)


class PgConsentIntentRepo(ConsentIntentRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def get(self, contact_id: int) -> RaisedIntent | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM consent_intents WHERE contact_id = $1", contact_id
        )
        return None if row is None else _intent(row)

    async def put(self, intent: RaisedIntent) -> None:
        await self._db.run(
            f"INSERT INTO consent_intents ({_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (contact_id) DO UPDATE SET message_id = excluded.message_id,"
            " wamid = excluded.wamid, text = excluded.text, language = excluded.language,"
            " evidence = excluded.evidence, mode = excluded.mode,"
            " raised_at = excluded.raised_at, answer = excluded.answer,"
            " answered_at = excluded.answered_at",
            intent.contact_id,
            intent.message_id,
            intent.wamid,
            intent.text,
            intent.language,
            intent.evidence,
            intent.mode.value,
            intent.raised_at,
            intent.answer.value if intent.answer else None,
            intent.answered_at,
        )

    async def answer(self, contact_id: int, answer: IntentAnswer, at: datetime) -> None:
        await self._db.run(
            "UPDATE consent_intents SET answer = $1, answered_at = $2 WHERE contact_id = $3",
            answer.value,
            at,
            contact_id,
        )


def _intent(row: asyncpg.Record) -> RaisedIntent:
    return RaisedIntent(
        contact_id=int(row["contact_id"]),
        message_id=str(row["message_id"]),
        wamid=row["wamid"],
        text=str(row["text"]),
        language=str(row["language"]),
        evidence=str(row["evidence"]),
        mode=IntentMode(row["mode"]),
        raised_at=row["raised_at"],
        answer=IntentAnswer(row["answer"]) if row["answer"] else None,
        answered_at=row["answered_at"],
    )

from __future__ import annotations

import sqlite3
from datetime import datetime

from engine.store.consent_intents import ConsentIntentRepo, IntentAnswer, IntentMode, RaisedIntent
from engine.store.sqlite.db import Db, from_db, from_db_opt, to_db

_COLUMNS = (
    "contact_id, message_id, wamid, text, language, evidence, mode, raised_at, answer, answered_at"
)


class SqliteConsentIntentRepo(ConsentIntentRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, contact_id: int) -> RaisedIntent | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM consent_intents WHERE contact_id = ?", (contact_id,)
        )
        return None if row is None else _intent(row)

    async def put(self, intent: RaisedIntent) -> None:
        await self._db.run(
            f"INSERT OR REPLACE INTO consent_intents ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                intent.contact_id,
                intent.message_id,
                intent.wamid,
                intent.text,
                intent.language,
                intent.evidence,
                intent.mode.value,
                to_db(intent.raised_at),
                intent.answer.value if intent.answer else None,
                to_db(intent.answered_at) if intent.answered_at else None,
            ),
        )

    async def answer(self, contact_id: int, answer: IntentAnswer, at: datetime) -> None:
        await self._db.run(
            "UPDATE consent_intents SET answer = ?, answered_at = ? WHERE contact_id = ?",
            (answer.value, to_db(at), contact_id),
        )


def _intent(row: sqlite3.Row) -> RaisedIntent:
    return RaisedIntent(
        contact_id=int(row["contact_id"]),
        message_id=str(row["message_id"]),
        wamid=row["wamid"],
        text=str(row["text"]),
        language=str(row["language"]),
        evidence=str(row["evidence"]),
        mode=IntentMode(row["mode"]),
        raised_at=from_db(row["raised_at"]),
        answer=IntentAnswer(row["answer"]) if row["answer"] else None,
        answered_at=from_db_opt(row["answered_at"]),
    )

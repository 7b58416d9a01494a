from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from engine.models.campaign import (
    Enrolment,
    EnrolmentState,
    MessageSequence,
    SequenceDefinition,
    StepRun,
)
from engine.models.message import Failure
from engine.store.announcements import Topic
from engine.store.failures import AlreadyExists, NotFound
from engine.store.sequences import SequenceRepo
from engine.store.sqlite.db import Db, from_db, from_db_opt, to_db

_SEQUENCE = "id, name, version, definition, created_at, updated_at"
_ENROLMENT = (
    "id, sequence_id, contact_id, state, source, next_step, anchor_at, enrolled_at,"
    " updated_at, finished_at"
)


def _sequence(row: sqlite3.Row) -> MessageSequence:
    return MessageSequence(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        definition=SequenceDefinition.model_validate_json(row["definition"]),
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
    )


def _enrolment(row: sqlite3.Row) -> Enrolment:
    return Enrolment(
        id=row["id"],
        sequence_id=row["sequence_id"],
        contact_id=row["contact_id"],
        state=EnrolmentState(row["state"]),
        source=row["source"],
        next_step=row["next_step"],
        anchor_at=from_db(row["anchor_at"]),
        enrolled_at=from_db(row["enrolled_at"]),
        updated_at=from_db(row["updated_at"]),
        finished_at=from_db_opt(row["finished_at"]),
    )


def _name_taken(error: sqlite3.IntegrityError) -> bool:
    return "sequences.name" in str(error)


class SqliteSequenceRepo(SequenceRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def create(self, sequence: MessageSequence) -> None:
        try:
            await self._db.run(
                f"INSERT INTO sequences ({_SEQUENCE}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    sequence.id,
                    sequence.name,
                    sequence.version,
                    sequence.definition.model_dump_json(),
                    to_db(sequence.created_at),
                    to_db(sequence.updated_at),
                ),
            )
        except sqlite3.IntegrityError as error:
            if _name_taken(error):
                raise AlreadyExists(f"a sequence is named {sequence.name!r}") from None
            raise

    async def replace(
        self, sequence_id: str, *, name: str, definition: SequenceDefinition, now: datetime
    ) -> MessageSequence:
        self._db.announce(Topic.CAMPAIGNS)
        try:
            row = await self._db.one(
                "UPDATE sequences SET name = ?, definition = ?, version = version + 1,"
                f" updated_at = ? WHERE id = ? RETURNING {_SEQUENCE}",
                (name, definition.model_dump_json(), to_db(now), sequence_id),
            )
        except sqlite3.IntegrityError as error:
            if _name_taken(error):
                raise AlreadyExists(f"a sequence is named {name!r}") from None
            raise
        if row is None:
            raise NotFound(f"no sequence {sequence_id}")
        return _sequence(row)

    async def get(self, sequence_id: str) -> MessageSequence | None:
        row = await self._db.one(f"SELECT {_SEQUENCE} FROM sequences WHERE id = ?", (sequence_id,))
        return None if row is None else _sequence(row)

    async def get_by_name(self, name: str) -> MessageSequence | None:
        row = await self._db.one(f"SELECT {_SEQUENCE} FROM sequences WHERE name = ?", (name,))
        return None if row is None else _sequence(row)

    async def by_name(self) -> list[MessageSequence]:
        rows = await self._db.all(f"SELECT {_SEQUENCE} FROM sequences ORDER BY name")
        return [_sequence(row) for row in rows]

    async def enrol(self, enrolment: Enrolment) -> bool:
        inserted = await self._db.run(
            f"INSERT INTO sequence_enrolments ({_ENROLMENT})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                enrolment.id,
                enrolment.sequence_id,
                enrolment.contact_id,
                enrolment.state.value,
                enrolment.source,
                enrolment.next_step,
                to_db(enrolment.anchor_at),
                to_db(enrolment.enrolled_at),
                to_db(enrolment.updated_at),
                None,
            ),
        )
        return inserted > 0

    async def enrolment(self, enrolment_id: str) -> Enrolment | None:
        row = await self._db.one(
            f"SELECT {_ENROLMENT} FROM sequence_enrolments WHERE id = ?", (enrolment_id,)
        )
        return None if row is None else _enrolment(row)

    async def newest_enrolments(self, sequence_id: str, *, limit: int) -> list[Enrolment]:
        rows = await self._db.all(
            f"SELECT {_ENROLMENT} FROM sequence_enrolments WHERE sequence_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (sequence_id, limit),
        )
        return [_enrolment(row) for row in rows]

    async def latest_enrolment(self, sequence_id: str, contact_id: int) -> Enrolment | None:
        row = await self._db.one(
            f"SELECT {_ENROLMENT} FROM sequence_enrolments"
            " WHERE sequence_id = ? AND contact_id = ?"
            " ORDER BY state = 'active' DESC, id DESC LIMIT 1",
            (sequence_id, contact_id),
        )
        return None if row is None else _enrolment(row)

    async def advance(
        self, enrolment_id: str, *, next_step: int, anchor_at: datetime, now: datetime
    ) -> None:
        await self._db.run(
            "UPDATE sequence_enrolments SET next_step = ?, anchor_at = ?, updated_at = ?"
            " WHERE id = ?",
            (next_step, to_db(anchor_at), to_db(now), enrolment_id),
        )

    async def finish(self, enrolment_id: str, state: EnrolmentState, now: datetime) -> None:
        moment = to_db(now)
        await self._db.run(
            "UPDATE sequence_enrolments SET state = ?, updated_at = ?, finished_at = ?"
            " WHERE id = ?",
            (state.value, moment, moment, enrolment_id),
        )

    async def record_run(
        self,
        enrolment_id: str,
        *,
        step_index: int,
        version: int,
        due_at: datetime,
        ran_at: datetime,
        message_id: str | None,
        failure: Failure | None,
    ) -> None:
        await self._db.run(
            "INSERT INTO sequence_step_runs (enrolment_id, step_index, version, due_at, ran_at,"
            " message_id, failure_code, failure_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                enrolment_id,
                step_index,
                version,
                to_db(due_at),
                to_db(ran_at),
                message_id,
                failure.code if failure else None,
                failure.reason if failure else None,
            ),
        )

    async def runs(self, enrolment_id: str) -> list[StepRun]:
        rows = await self._db.all(
            "SELECT r.step_index, r.version, r.due_at, r.ran_at, r.message_id,"
            " coalesce(m.status, 'failed') AS status,"
            " coalesce(m.failure_code, r.failure_code) AS failure_code,"
            " coalesce(m.failure_reason, r.failure_reason) AS failure_reason"
            " FROM sequence_step_runs r LEFT JOIN messages m ON m.id = r.message_id"
            " WHERE r.enrolment_id = ? ORDER BY r.step_index",
            (enrolment_id,),
        )
        return [
            StepRun(
                step_index=row["step_index"],
                version=row["version"],
                due_at=from_db(row["due_at"]),
                ran_at=from_db(row["ran_at"]),
                message_id=row["message_id"],
                status=row["status"],
                failure=None
                if row["failure_code"] is None
                else Failure(code=row["failure_code"], reason=row["failure_reason"] or ""),
            )
            for row in rows
        ]

    async def active_contact_ids(self, sequence_id: str, contact_ids: list[int]) -> set[int]:
        rows = await self._db.all(
            "SELECT contact_id FROM sequence_enrolments WHERE sequence_id = ? AND state = 'active'"
            " AND contact_id IN (SELECT value FROM json_each(?))",
            (sequence_id, json.dumps(contact_ids)),
        )
        return {row["contact_id"] for row in rows}

    async def bring_timers_forward(self, sequence_id: str, now: datetime) -> int:
        self._db.announce(Topic.CAMPAIGNS)
        moment = to_db(now)
        return await self._db.run(
            "UPDATE campaign_work SET due_at = ? WHERE kind = 'sequence_step' AND due_at > ?"
            " AND subject IN (SELECT id FROM sequence_enrolments"
            " WHERE sequence_id = ? AND state = 'active')",
            (moment, moment, sequence_id),
        )

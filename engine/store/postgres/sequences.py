from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
from engine.store.postgres.db import PgDb
from engine.store.sequences import SequenceRepo

_SEQUENCE = "id, name, version, definition, created_at, updated_at"
_ENROLMENT = (
    "id, sequence_id, contact_id, state, source, next_step, anchor_at, enrolled_at,"
    " updated_at, finished_at"
)


def _sequence(row: Mapping[str, Any]) -> MessageSequence:
    return MessageSequence(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        definition=SequenceDefinition.model_validate(row["definition"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _enrolment(row: Mapping[str, Any]) -> Enrolment:
    return Enrolment(
        id=row["id"],
        sequence_id=row["sequence_id"],
        contact_id=row["contact_id"],
        state=EnrolmentState(row["state"]),
        source=row["source"],
        next_step=row["next_step"],
        anchor_at=row["anchor_at"],
        enrolled_at=row["enrolled_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


class PgSequenceRepo(SequenceRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def create(self, sequence: MessageSequence) -> None:
        # A taken name is checked by the insert itself rather than caught as an error:
        # a failed statement would abort the whole PostgreSQL transaction, where SQLite
        # lets the job go on.
        inserted = await self._db.run(
            f"INSERT INTO sequences ({_SEQUENCE}) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (name) DO NOTHING",
            sequence.id,
            sequence.name,
            sequence.version,
            sequence.definition.model_dump(mode="json"),
            sequence.created_at,
            sequence.updated_at,
        )
        if not inserted:
            raise AlreadyExists(f"a sequence is named {sequence.name!r}")

    async def replace(
        self, sequence_id: str, *, name: str, definition: SequenceDefinition, now: datetime
    ) -> MessageSequence:
        self._db.announce(Topic.CAMPAIGNS)
        # As in create, the name is checked in the statement rather than left to fail it.
        row = await self._db.one(
            "UPDATE sequences SET name = $1, definition = $2, version = version + 1,"
            " updated_at = $3 WHERE id = $4 AND NOT EXISTS (SELECT 1 FROM sequences o"
            f" WHERE o.name = $1 AND o.id <> $4) RETURNING {_SEQUENCE}",
            name,
            definition.model_dump(mode="json"),
            now,
            sequence_id,
        )
        if row is not None:
            return _sequence(row)
        if await self._db.val("SELECT 1 FROM sequences WHERE id = $1", sequence_id) is None:
            raise NotFound(f"no sequence {sequence_id}")
        raise AlreadyExists(f"a sequence is named {name!r}")

    async def get(self, sequence_id: str) -> MessageSequence | None:
        row = await self._db.one(f"SELECT {_SEQUENCE} FROM sequences WHERE id = $1", sequence_id)
        return None if row is None else _sequence(row)

    async def get_by_name(self, name: str) -> MessageSequence | None:
        row = await self._db.one(f"SELECT {_SEQUENCE} FROM sequences WHERE name = $1", name)
        return None if row is None else _sequence(row)

    async def by_name(self) -> list[MessageSequence]:
        rows = await self._db.all(f"SELECT {_SEQUENCE} FROM sequences ORDER BY name")
        return [_sequence(row) for row in rows]

    async def enrol(self, enrolment: Enrolment) -> bool:
        inserted = await self._db.run(
            f"INSERT INTO sequence_enrolments ({_ENROLMENT})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            enrolment.id,
            enrolment.sequence_id,
            enrolment.contact_id,
            enrolment.state.value,
            enrolment.source,
            enrolment.next_step,
            enrolment.anchor_at,
            enrolment.enrolled_at,
            enrolment.updated_at,
            None,
        )
        return inserted > 0

    async def enrolment(self, enrolment_id: str) -> Enrolment | None:
        row = await self._db.one(
            f"SELECT {_ENROLMENT} FROM sequence_enrolments WHERE id = $1", enrolment_id
        )
        return None if row is None else _enrolment(row)

    async def newest_enrolments(self, sequence_id: str, *, limit: int) -> list[Enrolment]:
        rows = await self._db.all(
            f"SELECT {_ENROLMENT} FROM sequence_enrolments WHERE sequence_id = $1"
            " ORDER BY id DESC LIMIT $2",
            sequence_id,
            limit,
        )
        return [_enrolment(row) for row in rows]

    async def latest_enrolment(self, sequence_id: str, contact_id: int) -> Enrolment | None:
        row = await self._db.one(
            f"SELECT {_ENROLMENT} FROM sequence_enrolments"
            " WHERE sequence_id = $1 AND contact_id = $2"
            " ORDER BY state = 'active' DESC, id DESC LIMIT 1",
            sequence_id,
            contact_id,
        )
        return None if row is None else _enrolment(row)

    async def advance(
        self, enrolment_id: str, *, next_step: int, anchor_at: datetime, now: datetime
    ) -> None:
        await self._db.run(
            "UPDATE sequence_enrolments SET next_step = $1, anchor_at = $2, updated_at = $3"
            " WHERE id = $4",
            next_step,
            anchor_at,
            now,
            enrolment_id,
        )

    async def finish(self, enrolment_id: str, state: EnrolmentState, now: datetime) -> None:
        await self._db.run(
            "UPDATE sequence_enrolments SET state = $1, updated_at = $2, finished_at = $2"
            " WHERE id = $3",
            state.value,
            now,
            enrolment_id,
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
            " message_id, failure_code, failure_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            enrolment_id,
            step_index,
            version,
            due_at,
            ran_at,
            message_id,
            failure.code if failure else None,
            failure.reason if failure else None,
        )

    async def runs(self, enrolment_id: str) -> list[StepRun]:
        rows = await self._db.all(
            "SELECT r.step_index, r.version, r.due_at, r.ran_at, r.message_id,"
            " coalesce(m.status, 'failed') AS status,"
            " coalesce(m.failure_code, r.failure_code) AS failure_code,"
            " coalesce(m.failure_reason, r.failure_reason) AS failure_reason"
            " FROM sequence_step_runs r LEFT JOIN messages m ON m.id = r.message_id"
            " WHERE r.enrolment_id = $1 ORDER BY r.step_index",
            enrolment_id,
        )
        return [
            StepRun(
                step_index=row["step_index"],
                version=row["version"],
                due_at=row["due_at"],
                ran_at=row["ran_at"],
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
            "SELECT contact_id FROM sequence_enrolments WHERE sequence_id = $1"
            " AND state = 'active' AND contact_id = ANY($2::bigint[])",
            sequence_id,
            contact_ids,
        )
        return {row["contact_id"] for row in rows}

    async def bring_timers_forward(self, sequence_id: str, now: datetime) -> int:
        self._db.announce(Topic.CAMPAIGNS)
        return await self._db.run(
            "UPDATE campaign_work SET due_at = $1 WHERE kind = 'sequence_step' AND due_at > $1"
            " AND subject IN (SELECT id FROM sequence_enrolments"
            " WHERE sequence_id = $2 AND state = 'active')",
            now,
            sequence_id,
        )

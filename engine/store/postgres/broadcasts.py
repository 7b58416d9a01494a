from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from engine.models.campaign import (
    AttributeCondition,
    AudienceSpec,
    Broadcast,
    BroadcastState,
    GuardState,
    Pause,
)
from engine.models.message import Failure, MessageStatus, TemplateRef
from engine.models.template import TemplateCategory
from engine.store.announcements import Topic
from engine.store.broadcasts import (
    AudienceMember,
    AudiencePage,
    AudienceQuery,
    BroadcastRepo,
    GuardSample,
    RecipientRow,
)
from engine.store.failures import AlreadyExists
from engine.store.postgres.db import PgDb

HELD = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""``next_attempt_at`` of a paused broadcast's queued messages: never due until released."""

WINDOW_PAGES = 8
"""A page examines at most this many times its size of contact ids, so a sparse audience
costs many short pages rather than one long scan."""

_COLUMNS = (
    "id, name, template, category, audience, opted_in_only, state, send_at, total, will_send,"
    " excluded_opted_out, quality_risk, planned_until, planned, planning_done, guard,"
    " paused_by, paused_reason, paused_at, created_at, updated_at, finished_at,"
    " phone_number_id, quiet_hours, own_quiet_hours"
)
_INSERT = (
    f"INSERT INTO broadcasts ({_COLUMNS})"
    f" VALUES ({', '.join(f'${n}' for n in range(1, len(_COLUMNS.split(',')) + 1))})"
)


class _Params:
    """The parameters of a statement put together piece by piece: each value added is
    given the next ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _broadcast(row: Mapping[str, Any]) -> Broadcast:
    paused = None
    if row["paused_reason"] is not None:
        paused = Pause(by=row["paused_by"], reason=row["paused_reason"], at=row["paused_at"])
    return Broadcast(
        id=row["id"],
        name=row["name"],
        template=TemplateRef.model_validate(row["template"]),
        category=TemplateCategory(row["category"]),
        audience=AudienceSpec.model_validate(row["audience"]),
        opted_in_only=row["opted_in_only"],
        state=BroadcastState(row["state"]),
        send_at=row["send_at"],
        total=row["total"],
        will_send=row["will_send"],
        excluded_opted_out=row["excluded_opted_out"],
        quality_risk=row["quality_risk"],
        planned_until=row["planned_until"],
        planned=row["planned"],
        planning_done=row["planning_done"],
        guard=GuardState(row["guard"]),
        paused=paused,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        phone_number_id=row["phone_number_id"],
        quiet_hours=row["quiet_hours"],
        own_quiet_hours=row["own_quiet_hours"],
    )


def _attribute_sql(condition: AttributeCondition, param: _Params) -> str:
    # Values compare as JSON values, as jsonb equality does: "1" is not 1 (text and
    # number), true is not 1, and 1 is 1.0.
    key = param(condition.attribute)
    match condition.op:
        case "equals":
            return f"c.attributes -> {key}::text = {param(condition.equals)}::jsonb"
        case "in":
            return f"c.attributes -> {key}::text = ANY({param(list(condition.in_ or ()))}::jsonb[])"
        case "exists":
            present = f"c.attributes ? {key}::text"
            return present if condition.exists else f"NOT ({present})"
    raise AssertionError(condition.op)  # pragma: no cover


class PgBroadcastRepo(BroadcastRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def contact_ids(self, wa_ids: Sequence[str]) -> dict[str, int]:
        rows = await self._db.all(
            "SELECT wa_id, user_id, id FROM contacts"
            " WHERE wa_id = ANY($1::text[]) OR user_id = ANY($1::text[])",
            list(wa_ids),
        )
        asked = set(wa_ids)
        return {
            address: row["id"]
            for row in rows
            for address in (row["wa_id"], row["user_id"])
            if address in asked
        }

    async def audience_page(
        self, audience: AudienceQuery, *, after: int, limit: int
    ) -> AudiencePage:
        param = _Params()
        selected = "SELECT c.id, c.wa_id, c.user_id, c.marketing_opt_in"
        joined = " FROM contacts c"
        if audience.last_inbound:
            selected += ", v.last_inbound_at"
            joined += " LEFT JOIN conversations v ON v.contact_id = c.id"
        else:
            selected += ", NULL"
        where = [_attribute_sql(condition, param) for condition in audience.attributes]
        where.append("c.merged_into IS NULL")  # merged contacts live on in another
        named_only = not audience.tags and (
            audience.contact_ids is not None or audience.broadcast_id is not None
        )
        if named_only and audience.broadcast_id is not None:
            # The named contacts lead: the page never looks at anyone else.
            rows = await self._db.all(
                f"{selected}{joined} JOIN broadcast_contacts b ON b.contact_id = c.id"
                f" WHERE b.broadcast_id = {param(audience.broadcast_id)}"
                f" AND b.contact_id > {param(after)}"
                + "".join(f" AND {sql}" for sql in where)
                + f" ORDER BY b.contact_id LIMIT {param(limit)}",
                *param.values,
            )
            members = [_member(row) for row in rows]
            done = len(members) < limit
            return AudiencePage(members, members[-1].contact_id if members else after, done)
        if named_only and audience.contact_ids is not None:
            ids = sorted(audience.contact_ids)
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            rows = await self._db.all(
                f"{selected}{joined} WHERE c.id = ANY({param(chunk)}::bigint[])"
                + "".join(f" AND {sql}" for sql in where)
                + " ORDER BY c.id",
                *param.values,
            )
            cursor = chunk[-1] if chunk else after
            return AudiencePage([_member(row) for row in rows], cursor, start + limit >= len(ids))

        membership: list[str] = []
        if audience.broadcast_id is not None:
            membership.append(
                "EXISTS (SELECT 1 FROM broadcast_contacts b"
                f" WHERE b.broadcast_id = {param(audience.broadcast_id)} AND b.contact_id = c.id)"
            )
        if audience.contact_ids is not None:
            membership.append(f"c.id = ANY({param(list(audience.contact_ids))}::bigint[])")
        if audience.tags:
            tags = sorted(set(audience.tags))
            tagged = (
                "SELECT {what} FROM contact_tags t WHERE t.contact_id = c.id"
                f" AND t.tag = ANY({param(tags)}::text[])"
            )
            if audience.all_tags:
                membership.append(f"({tagged.format(what='count(*)')}) = {param(len(tags))}")
            else:
                membership.append(f"EXISTS ({tagged.format(what='1')})")
        if membership:
            where.insert(0, "(" + " OR ".join(membership) + ")")
        last_id = int(await self._db.val("SELECT coalesce(max(id), 0) FROM contacts"))
        window_end = after + limit * WINDOW_PAGES
        rows = await self._db.all(
            f"{selected}{joined} WHERE c.id > {param(after)} AND c.id <= {param(window_end)}"
            + "".join(f" AND {sql}" for sql in where)
            + f" ORDER BY c.id LIMIT {param(limit)}",
            *param.values,
        )
        members = [_member(row) for row in rows]
        if len(members) == limit:
            return AudiencePage(members, members[-1].contact_id, False)
        return AudiencePage(members, window_end, window_end >= last_id)

    async def create(self, broadcast: Broadcast, contact_ids: Sequence[int]) -> None:
        await self._db.run(
            _INSERT,
            broadcast.id,
            broadcast.name,
            broadcast.template.model_dump(mode="json"),
            broadcast.category.value,
            broadcast.audience.model_dump(mode="json", by_alias=True),
            broadcast.opted_in_only,
            broadcast.state.value,
            broadcast.send_at,
            broadcast.total,
            broadcast.will_send,
            broadcast.excluded_opted_out,
            broadcast.quality_risk,
            broadcast.planned_until,
            broadcast.planned,
            broadcast.planning_done,
            broadcast.guard.value,
            None,
            None,
            None,
            broadcast.created_at,
            broadcast.updated_at,
            None,
            broadcast.phone_number_id,
            broadcast.quiet_hours,
            broadcast.own_quiet_hours,
        )
        if contact_ids:
            await self._db.run(
                "INSERT INTO broadcast_contacts (broadcast_id, contact_id)"
                " SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
                broadcast.id,
                list(contact_ids),
            )

    async def remember_request(self, idempotency_key: str, broadcast_id: str) -> None:
        row = await self._db.one(
            "INSERT INTO broadcast_requests (idempotency_key, broadcast_id) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING broadcast_id",
            idempotency_key,
            broadcast_id,
        )
        if row is None:
            raise AlreadyExists(f"a broadcast was made with key {idempotency_key}")

    async def by_request(self, idempotency_key: str) -> str | None:
        row = await self._db.one(
            "SELECT broadcast_id FROM broadcast_requests WHERE idempotency_key = $1",
            idempotency_key,
        )
        return None if row is None else str(row["broadcast_id"])

    async def get(self, broadcast_id: str) -> Broadcast | None:
        row = await self._db.one(f"SELECT {_COLUMNS} FROM broadcasts WHERE id = $1", broadcast_id)
        return None if row is None else _broadcast(row)

    async def newest(self, *, before: str | None = None, limit: int = 100) -> list[Broadcast]:
        rows = await self._db.all(
            f"SELECT {_COLUMNS} FROM broadcasts WHERE $1::text IS NULL OR id < $1"
            " ORDER BY id DESC LIMIT $2",
            before,
            limit,
        )
        return [_broadcast(row) for row in rows]

    async def ids_in_state(self, state: BroadcastState) -> list[str]:
        rows = await self._db.all(
            "SELECT id FROM broadcasts WHERE state = $1 ORDER BY send_at, id", state.value
        )
        return [row["id"] for row in rows]

    async def add_recipients(self, broadcast_id: str, planned: Sequence[tuple[int, str]]) -> None:
        await self._db.run(
            "INSERT INTO broadcast_recipients (broadcast_id, contact_id, message_id)"
            " SELECT $1, r.contact_id, r.message_id"
            " FROM unnest($2::bigint[], $3::text[]) AS r(contact_id, message_id)",
            broadcast_id,
            [contact_id for contact_id, _ in planned],
            [message_id for _, message_id in planned],
        )

    async def advance(
        self, broadcast_id: str, *, planned_until: int, planned: int, done: bool, now: datetime
    ) -> None:
        await self._db.run(
            "UPDATE broadcasts SET planned_until = $1, planned = planned + $2,"
            " planning_done = $3, updated_at = $4 WHERE id = $5",
            planned_until,
            planned,
            done,
            now,
            broadcast_id,
        )

    async def set_state(
        self,
        broadcast_id: str,
        state: BroadcastState,
        *,
        now: datetime,
        guard: GuardState | None = None,
        paused_by: str | None = None,
        reason: str | None = None,
    ) -> None:
        self._db.announce(Topic.CAMPAIGNS)  # the worker watches broadcasts by state
        paused = state is BroadcastState.PAUSED
        await self._db.run(
            "UPDATE broadcasts SET state = $1, guard = coalesce($2, guard), paused_by = $3,"
            " paused_reason = $4, paused_at = $5, updated_at = $6,"
            " finished_at = coalesce($7, finished_at) WHERE id = $8",
            state.value,
            guard.value if guard else None,
            paused_by if paused else None,
            reason if paused else None,
            now if paused else None,
            now,
            now if state.is_final else None,
            broadcast_id,
        )

    async def counts(self, broadcast_id: str) -> dict[str, int]:
        rows = await self._db.all(
            "SELECT m.status, count(*) AS n FROM broadcast_recipients r"
            " JOIN messages m ON m.id = r.message_id WHERE r.broadcast_id = $1"
            " GROUP BY m.status",
            broadcast_id,
        )
        return {row["status"]: int(row["n"]) for row in rows}

    async def report(
        self, broadcast_id: str, *, after_contact: int = 0, limit: int = 1000
    ) -> list[RecipientRow]:
        rows = await self._db.all(
            "SELECT r.contact_id, coalesce(m.recipient, c.wa_id, c.user_id) AS to_,"
            " m.id, m.status, m.failure_code, m.failure_reason, m.wamid, m.updated_at"
            " FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            " JOIN contacts c ON c.id = r.contact_id"
            " WHERE r.broadcast_id = $1 AND r.contact_id > $2 ORDER BY r.contact_id LIMIT $3",
            broadcast_id,
            after_contact,
            limit,
        )
        return [
            RecipientRow(
                contact_id=row["contact_id"],
                to=row["to_"],
                message_id=row["id"],
                status=MessageStatus(row["status"]),
                failure=None
                if row["failure_code"] is None
                else Failure(code=row["failure_code"], reason=row["failure_reason"] or ""),
                wamid=row["wamid"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    async def guard_sample(self, broadcast_id: str, size: int, codes: Sequence[str]) -> GuardSample:
        rows = await self._db.all(
            "SELECT s.status, s.failure_code, count(*) AS n FROM (SELECT m.status,"
            " m.failure_code FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.broadcast_id = $1 AND m.status != 'skipped' ORDER BY r.message_id"
            " LIMIT $2) s GROUP BY s.status, s.failure_code",
            broadcast_id,
            size,
        )
        wanted = set(codes)
        failures: dict[str, int] = {}
        for row in rows:
            if row["status"] == "failed" and row["failure_code"] in wanted:
                failures[row["failure_code"]] = failures.get(row["failure_code"], 0) + row["n"]
        return GuardSample(sum(int(row["n"]) for row in rows), failures)

    async def has_pending(self, broadcast_id: str) -> bool:
        # Newest first: the messages planned last are the ones still waiting.
        found = await self._db.val(
            "SELECT 1 FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.broadcast_id = $1 AND m.status IN ('queued', 'sending', 'deferred')"
            " ORDER BY r.message_id DESC LIMIT 1",
            broadcast_id,
        )
        return found is not None

    async def _chunk(self, broadcast_id: str, after: str, limit: int) -> list[str]:
        rows = await self._db.all(
            "SELECT message_id FROM broadcast_recipients WHERE broadcast_id = $1"
            " AND message_id > $2 ORDER BY message_id LIMIT $3",
            broadcast_id,
            after,
            limit,
        )
        return [row["message_id"] for row in rows]

    async def hold_queued(self, broadcast_id: str, *, after: str, limit: int) -> str | None:
        chunk = await self._chunk(broadcast_id, after, limit)
        await self._db.run(
            "UPDATE messages SET next_attempt_at = $1"
            " WHERE status = 'queued' AND id = ANY($2::text[])",
            HELD,
            chunk,
        )
        return chunk[-1] if len(chunk) == limit else None

    async def release_held(
        self, broadcast_id: str, now: datetime, *, after: str, limit: int
    ) -> str | None:
        chunk = await self._chunk(broadcast_id, after, limit)
        self._db.announce(Topic.OUTBOX)  # due again
        await self._db.run(
            "UPDATE messages SET next_attempt_at = $1"
            " WHERE status = 'queued' AND next_attempt_at = $2 AND id = ANY($3::text[])",
            now,
            HELD,
            chunk,
        )
        return chunk[-1] if len(chunk) == limit else None

    async def skip_queued(
        self, broadcast_id: str, failure: Failure, now: datetime, *, after: str, limit: int
    ) -> str | None:
        chunk = await self._chunk(broadcast_id, after, limit)
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code, failure_reason)"
            " SELECT m.id, 'skipped', $1, $2, $3 FROM messages m"
            " WHERE m.status = 'queued' AND m.id = ANY($4::text[])",
            now,
            failure.code,
            failure.reason,
            chunk,
        )
        await self._db.run(
            "UPDATE messages SET status = 'skipped', failure_code = $1, failure_reason = $2,"
            " updated_at = $3, next_attempt_at = NULL"
            " WHERE status = 'queued' AND id = ANY($4::text[])",
            failure.code,
            failure.reason,
            now,
            chunk,
        )
        return chunk[-1] if len(chunk) == limit else None


def _member(row: asyncpg.Record) -> AudienceMember:
    # Positional: this runs once per recipient.
    return AudienceMember(row[0], row[1], row[2], row[3], row[4])

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
from engine.store.sqlite.db import Db, from_db, from_db_opt, to_db

HELD = "9999-12-31T23:59:59.999999Z"
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
_IS_BOOLEAN = "({} IN ('true', 'false'))"
_IN_CHUNK = "SELECT value FROM json_each(?)"


def _broadcast(row: sqlite3.Row) -> Broadcast:
    paused = None
    if row["paused_reason"] is not None:
        paused = Pause(by=row["paused_by"], reason=row["paused_reason"], at=row["paused_at"])
    return Broadcast(
        id=row["id"],
        name=row["name"],
        template=TemplateRef.model_validate_json(row["template"]),
        category=TemplateCategory(row["category"]),
        audience=AudienceSpec.model_validate_json(row["audience"]),
        opted_in_only=bool(row["opted_in_only"]),
        state=BroadcastState(row["state"]),
        send_at=from_db(row["send_at"]),
        total=row["total"],
        will_send=row["will_send"],
        excluded_opted_out=row["excluded_opted_out"],
        quality_risk=row["quality_risk"],
        planned_until=row["planned_until"],
        planned=row["planned"],
        planning_done=bool(row["planning_done"]),
        guard=GuardState(row["guard"]),
        paused=paused,
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        finished_at=from_db_opt(row["finished_at"]),
        phone_number_id=row["phone_number_id"],
        quiet_hours=row["quiet_hours"],
        own_quiet_hours=bool(row["own_quiet_hours"]),
    )


def _attribute_sql(condition: AttributeCondition) -> tuple[str, list[Any]]:
    path = f'$."{condition.attribute}"'
    # Values compare as JSON values: "1" is not 1 (text and number), and, although SQLite
    # reads JSON true as 1, true is not 1 either.
    match condition.op:
        case "equals":
            value = json.dumps(condition.equals)
            return (
                "json_extract(c.attributes, ?) = json_extract(?, '$') AND"
                f" {_IS_BOOLEAN.format('json_type(c.attributes, ?)')}"
                f" = {_IS_BOOLEAN.format('json_type(?)')}",
                [path, value, path, value],
            )
        case "in":
            return (
                "EXISTS (SELECT 1 FROM json_each(?) v"
                " WHERE v.atom = json_extract(c.attributes, ?) AND"
                f" {_IS_BOOLEAN.format('v.type')}"
                f" = {_IS_BOOLEAN.format('json_type(c.attributes, ?)')})",
                [json.dumps(list(condition.in_ or ())), path, path],
            )
        case "exists":
            test = "IS NOT NULL" if condition.exists else "IS NULL"
            return f"json_type(c.attributes, ?) {test}", [path]
    raise AssertionError(condition.op)  # pragma: no cover


class SqliteBroadcastRepo(BroadcastRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def contact_ids(self, wa_ids: Sequence[str]) -> dict[str, int]:
        rows = await self._db.all(
            "SELECT j.value AS address, c.id FROM json_each(?) j"
            " JOIN contacts c ON c.wa_id = j.value OR c.user_id = j.value",
            (json.dumps(list(wa_ids)),),
        )
        return {row["address"]: row["id"] for row in rows}

    async def audience_page(
        self, audience: AudienceQuery, *, after: int, limit: int
    ) -> AudiencePage:
        selected = "SELECT c.id, c.wa_id, c.user_id, c.marketing_opt_in"
        joined = " FROM contacts c"
        if audience.last_inbound:
            selected += ", v.last_inbound_at"
            joined += " LEFT JOIN conversations v ON v.contact_id = c.id"
        else:
            selected += ", NULL"
        where: list[str] = ["c.merged_into IS NULL"]  # merged contacts live on in another
        params: list[Any] = []
        for condition in audience.attributes:
            sql, values = _attribute_sql(condition)
            where.append(sql)
            params += values
        named_only = not audience.tags and (
            audience.contact_ids is not None or audience.broadcast_id is not None
        )
        if named_only and audience.broadcast_id is not None:
            # The named contacts lead: the page never looks at anyone else.
            rows = await self._db.all(
                f"{selected}{joined} JOIN broadcast_contacts b ON b.contact_id = c.id"
                " WHERE b.broadcast_id = ? AND b.contact_id > ?"
                + "".join(f" AND {sql}" for sql in where)
                + " ORDER BY b.contact_id LIMIT ?",
                (audience.broadcast_id, after, *params, limit),
            )
            members = [_member(row) for row in rows]
            done = len(members) < limit
            return AudiencePage(members, members[-1].contact_id if members else after, done)
        if named_only and audience.contact_ids is not None:
            ids = sorted(audience.contact_ids)
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            rows = await self._db.all(
                f"{selected}{joined} WHERE c.id IN (SELECT value FROM json_each(?))"
                + "".join(f" AND {sql}" for sql in where)
                + " ORDER BY c.id",
                (json.dumps(chunk), *params),
            )
            cursor = chunk[-1] if chunk else after
            return AudiencePage([_member(row) for row in rows], cursor, start + limit >= len(ids))

        membership: list[str] = []
        member_params: list[Any] = []
        if audience.broadcast_id is not None:
            membership.append(
                "EXISTS (SELECT 1 FROM broadcast_contacts b"
                " WHERE b.broadcast_id = ? AND b.contact_id = c.id)"
            )
            member_params.append(audience.broadcast_id)
        if audience.contact_ids is not None:
            membership.append("c.id IN (SELECT value FROM json_each(?))")
            member_params.append(json.dumps(list(audience.contact_ids)))
        if audience.tags:
            tags = sorted(set(audience.tags))
            tagged = (
                "SELECT {what} FROM contact_tags t WHERE t.contact_id = c.id"
                " AND t.tag IN (SELECT value FROM json_each(?))"
            )
            if audience.all_tags:
                membership.append(f"({tagged.format(what='count(*)')}) = ?")
                member_params += [json.dumps(tags), len(tags)]
            else:
                membership.append(f"EXISTS ({tagged.format(what='1')})")
                member_params.append(json.dumps(tags))
        if membership:
            where.insert(0, "(" + " OR ".join(membership) + ")")
            params = member_params + params
        last = await self._db.one("SELECT max(id) AS last FROM contacts")
        last_id = int(last["last"] or 0) if last else 0
        window_end = after + limit * WINDOW_PAGES
        rows = await self._db.all(
            f"{selected}{joined} WHERE c.id > ? AND c.id <= ?"
            + "".join(f" AND {sql}" for sql in where)
            + " ORDER BY c.id LIMIT ?",
            (after, window_end, *params, limit),
        )
        members = [_member(row) for row in rows]
        if len(members) == limit:
            return AudiencePage(members, members[-1].contact_id, False)
        return AudiencePage(members, window_end, window_end >= last_id)

    async def create(self, broadcast: Broadcast, contact_ids: Sequence[int]) -> None:
        await self._db.run(
            f"INSERT INTO broadcasts ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                broadcast.id,
                broadcast.name,
                broadcast.template.model_dump_json(),
                broadcast.category.value,
                broadcast.audience.model_dump_json(by_alias=True),
                int(broadcast.opted_in_only),
                broadcast.state.value,
                to_db(broadcast.send_at),
                broadcast.total,
                broadcast.will_send,
                broadcast.excluded_opted_out,
                broadcast.quality_risk,
                broadcast.planned_until,
                broadcast.planned,
                int(broadcast.planning_done),
                broadcast.guard.value,
                None,
                None,
                None,
                to_db(broadcast.created_at),
                to_db(broadcast.updated_at),
                None,
                broadcast.phone_number_id,
                broadcast.quiet_hours,
                int(broadcast.own_quiet_hours),
            ),
        )
        if contact_ids:
            await self._db.run(
                "INSERT OR IGNORE INTO broadcast_contacts (broadcast_id, contact_id)"
                " SELECT ?, value FROM json_each(?)",
                (broadcast.id, json.dumps(list(contact_ids))),
            )

    async def remember_request(self, idempotency_key: str, broadcast_id: str) -> None:
        try:
            await self._db.run(
                "INSERT INTO broadcast_requests (idempotency_key, broadcast_id) VALUES (?, ?)",
                (idempotency_key, broadcast_id),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"a broadcast was made with key {idempotency_key}") from None

    async def by_request(self, idempotency_key: str) -> str | None:
        row = await self._db.one(
            "SELECT broadcast_id FROM broadcast_requests WHERE idempotency_key = ?",
            (idempotency_key,),
        )
        return None if row is None else str(row["broadcast_id"])

    async def get(self, broadcast_id: str) -> Broadcast | None:
        row = await self._db.one(f"SELECT {_COLUMNS} FROM broadcasts WHERE id = ?", (broadcast_id,))
        return None if row is None else _broadcast(row)

    async def newest(self, *, before: str | None = None, limit: int = 100) -> list[Broadcast]:
        rows = await self._db.all(
            f"SELECT {_COLUMNS} FROM broadcasts WHERE ? IS NULL OR id < ? ORDER BY id DESC LIMIT ?",
            (before, before, limit),
        )
        return [_broadcast(row) for row in rows]

    async def ids_in_state(self, state: BroadcastState) -> list[str]:
        rows = await self._db.all(
            "SELECT id FROM broadcasts WHERE state = ? ORDER BY send_at, id", (state.value,)
        )
        return [row["id"] for row in rows]

    async def add_recipients(self, broadcast_id: str, planned: Sequence[tuple[int, str]]) -> None:
        await self._db.run(
            "INSERT INTO broadcast_recipients (broadcast_id, contact_id, message_id)"
            " SELECT ?, value ->> 0, value ->> 1 FROM json_each(?)",
            (broadcast_id, json.dumps(planned)),
        )

    async def advance(
        self, broadcast_id: str, *, planned_until: int, planned: int, done: bool, now: datetime
    ) -> None:
        await self._db.run(
            "UPDATE broadcasts SET planned_until = ?, planned = planned + ?, planning_done = ?,"
            " updated_at = ? WHERE id = ?",
            (planned_until, planned, int(done), to_db(now), broadcast_id),
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
        moment = to_db(now)
        paused = state is BroadcastState.PAUSED
        await self._db.run(
            "UPDATE broadcasts SET state = ?, guard = coalesce(?, guard), paused_by = ?,"
            " paused_reason = ?, paused_at = ?, updated_at = ?,"
            " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
            (
                state.value,
                guard.value if guard else None,
                paused_by if paused else None,
                reason if paused else None,
                moment if paused else None,
                moment,
                state.is_final,
                moment,
                broadcast_id,
            ),
        )

    async def counts(self, broadcast_id: str) -> dict[str, int]:
        rows = await self._db.all(
            "SELECT m.status, count(*) AS n FROM broadcast_recipients r"
            " JOIN messages m ON m.id = r.message_id WHERE r.broadcast_id = ?"
            " GROUP BY m.status",
            (broadcast_id,),
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
            " WHERE r.broadcast_id = ? AND r.contact_id > ? ORDER BY r.contact_id LIMIT ?",
            (broadcast_id, after_contact, limit),
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
                updated_at=from_db(row["updated_at"]),
            )
            for row in rows
        ]

    async def guard_sample(self, broadcast_id: str, size: int, codes: Sequence[str]) -> GuardSample:
        rows = await self._db.all(
            "SELECT s.status, s.failure_code, count(*) AS n FROM (SELECT m.status,"
            " m.failure_code FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.broadcast_id = ? AND m.status != 'skipped' ORDER BY r.message_id LIMIT ?) s"
            " GROUP BY s.status, s.failure_code",
            (broadcast_id, size),
        )
        wanted = set(codes)
        failures: dict[str, int] = {}
        for row in rows:
            if row["status"] == "failed" and row["failure_code"] in wanted:
                failures[row["failure_code"]] = failures.get(row["failure_code"], 0) + row["n"]
        return GuardSample(sum(int(row["n"]) for row in rows), failures)

    async def has_pending(self, broadcast_id: str) -> bool:
        # Newest first: the messages planned last are the ones still waiting.
        row = await self._db.one(
            "SELECT 1 FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            " WHERE r.broadcast_id = ? AND m.status IN ('queued', 'sending', 'deferred')"
            " ORDER BY r.message_id DESC LIMIT 1",
            (broadcast_id,),
        )
        return row is not None

    async def _chunk(self, broadcast_id: str, after: str, limit: int) -> list[str]:
        rows = await self._db.all(
            "SELECT message_id FROM broadcast_recipients WHERE broadcast_id = ?"
            " AND message_id > ? ORDER BY message_id LIMIT ?",
            (broadcast_id, after, limit),
        )
        return [row[0] for row in rows]

    async def hold_queued(self, broadcast_id: str, *, after: str, limit: int) -> str | None:
        chunk = await self._chunk(broadcast_id, after, limit)
        await self._db.run(
            "UPDATE messages SET next_attempt_at = ?"
            f" WHERE status = 'queued' AND id IN ({_IN_CHUNK})",
            (HELD, json.dumps(chunk)),
        )
        return chunk[-1] if len(chunk) == limit else None

    async def release_held(
        self, broadcast_id: str, now: datetime, *, after: str, limit: int
    ) -> str | None:
        chunk = await self._chunk(broadcast_id, after, limit)
        self._db.announce(Topic.OUTBOX)  # due again
        await self._db.run(
            "UPDATE messages SET next_attempt_at = ?"
            f" WHERE status = 'queued' AND next_attempt_at = ? AND id IN ({_IN_CHUNK})",
            (to_db(now), HELD, json.dumps(chunk)),
        )
        return chunk[-1] if len(chunk) == limit else None

    async def skip_queued(
        self, broadcast_id: str, failure: Failure, now: datetime, *, after: str, limit: int
    ) -> str | None:
        chunk = json.dumps(await self._chunk(broadcast_id, after, limit))
        moment = to_db(now)
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code, failure_reason)"
            f" SELECT m.id, 'skipped', ?, ?, ? FROM messages m"
            f" WHERE m.status = 'queued' AND m.id IN ({_IN_CHUNK})",
            (moment, failure.code, failure.reason, chunk),
        )
        await self._db.run(
            "UPDATE messages SET status = 'skipped', failure_code = ?, failure_reason = ?,"
            " updated_at = ?, next_attempt_at = NULL"
            f" WHERE status = 'queued' AND id IN ({_IN_CHUNK})",
            (failure.code, failure.reason, moment, chunk),
        )
        ids: list[str] = json.loads(chunk)
        return ids[-1] if len(ids) == limit else None


def _member(row: sqlite3.Row) -> AudienceMember:
    # Positional, and the time parsed only when read: this runs once per recipient.
    last = row[4]
    return AudienceMember(
        row[0], row[1], row[2], bool(row[3]), None if last is None else from_db(last)
    )

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.models.message import (
    Channel,
    Direction,
    Failure,
    Message,
    MessageStatus,
    StatusChange,
    TemplateRef,
)
from engine.send_rules import Options
from engine.store.announcements import Topic
from engine.store.messages import (
    BillingLine,
    MessageFilter,
    MessageRepo,
    PolicyInputs,
    Pricing,
    add_to_history,
)
from engine.store.postgres.db import PgDb

_COLUMNS = """
    m.id, m.direction, m.channel, m.contact_id, coalesce(c.wa_id, c.user_id) AS contact,
    m.kind, m.text, m.template, m.payload, m.status, m.failure_code, m.failure_reason,
    m.wamid, m.created_at, m.updated_at, m.held_until
"""
_FROM = "FROM messages m JOIN contacts c ON c.id = m.contact_id"

MESSAGE_COLUMNS = (
    "id",
    "direction",
    "channel",
    "contact_id",
    "kind",
    "text",
    "template",
    "payload",
    "status",
    "failure_code",
    "failure_reason",
    "wamid",
    "created_at",
    "updated_at",
    "content_kind",
    "opted_in_only",
    "confirmed_opted_out",
    "quiet_hours",
    "held_until",
)
"""What every new message row is written with: :meth:`PgMessageRepo.insert` writes
these, the outbox's ``add`` and ``add_batch`` these and its own, all from
:func:`message_values`, so no way of creating a message forgets one."""

_INSERT_WITH_NUMBER = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}, phone_number_id)"
    f" VALUES ({', '.join(f'${n}' for n in range(1, len(MESSAGE_COLUMNS) + 2))})"
)

_INSERT_STATUS = (
    "INSERT INTO message_statuses (message_id, status, at, failure_code, failure_reason,"
    " details) VALUES ($1, $2, $3, $4, $5, $6)"
)

_NO_OPTIONS = Options()

HANDED_OVER = "('sending', 'sent', 'delivered', 'read', 'played')"
"""Statuses of a message given to Meta, or being given (a ``sending`` row holds its place
under the frequency cap until its outcome is known)."""


def message_values(message: Message, policy: PolicyInputs | None) -> tuple[Any, ...]:
    """The values of :data:`MESSAGE_COLUMNS` for ``message`` (``template`` and ``payload``
    as Python objects, for JSONB); ``policy``: what the opt-in rule was asked about it
    (None for inbound messages)."""
    failure = message.failure
    options = policy.options if policy is not None else _NO_OPTIONS
    return (
        message.id,
        message.direction.value,
        message.channel.value if message.channel else None,
        message.contact_id,
        message.kind,
        message.text,
        message.template.model_dump(mode="json") if message.template else None,
        message.payload,
        message.status.value,
        failure.code if failure else None,
        failure.reason if failure else None,
        message.wamid,
        message.created_at,
        message.updated_at,
        policy.kind.value if policy is not None else None,
        options.opted_in_only,
        options.confirmed_opted_out,
        str(hours) if (hours := options.quiet_hours) is not None else None,
        message.held_until,
    )


def filter_sql(where: MessageFilter, first: int = 1) -> tuple[list[str], list[Any]]:
    """The conditions on ``messages m`` of ``where``'s fields but ``limit`` and
    ``after_id`` (each caller pages its own way), with their parameters, numbered from
    ``$first``."""
    clauses: list[str] = []
    params: list[Any] = []

    def condition(template: str, value: Any) -> None:
        params.append(value)
        clauses.append(template.format(f"${first + len(params) - 1}"))

    if where.channel is not None:
        condition("m.channel = {}", where.channel.value)
    if where.status is not None:
        condition("m.status = {}", where.status.value)
    if where.since is not None:
        condition("m.created_at >= {}", where.since)
    if where.until is not None:
        condition("m.created_at < {}", where.until)
    if where.contact_id is not None:
        condition("m.contact_id = {}", where.contact_id)
    if where.failure_code is not None:
        condition("m.failure_code = {}", where.failure_code)
    return clauses, params


def failure_of(code: str | None, reason: str | None) -> Failure | None:
    """The failure stored as a code and a reason, if any."""
    return None if code is None else Failure(code=code, reason=reason or "")


def status_change_from_row(row: Mapping[str, Any]) -> StatusChange:
    """One ``message_statuses`` row."""
    return StatusChange(
        status=MessageStatus(row["status"]),
        at=row["at"],
        failure=failure_of(row["failure_code"], row["failure_reason"]),
        details=row["details"],
    )


class PgMessageRepo(MessageRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def insert(
        self,
        message: Message,
        *,
        policy: PolicyInputs | None = None,
        phone_number_id: str | None = None,
    ) -> bool:
        inserted = await self._db.run(
            f"{_INSERT_WITH_NUMBER} ON CONFLICT (wamid) DO NOTHING",
            *message_values(message, policy),
            phone_number_id,
        )
        if not inserted:
            return False
        failure = message.failure
        rows = [
            (
                message.id,
                change.status.value,
                change.at,
                change.failure.code if change.failure else None,
                change.failure.reason if change.failure else None,
                change.details,
            )
            for change in message.history
            or (StatusChange(status=message.status, at=message.created_at, failure=failure),)
        ]
        if len(rows) == 1:  # nearly always: executemany's setup costs more than the row
            await self._db.run(_INSERT_STATUS, *rows[0])
        else:
            await self._db.many(_INSERT_STATUS, rows)
        return True

    async def get(self, message_id: str) -> Message | None:
        return await self._one(f"SELECT {_COLUMNS} {_FROM} WHERE m.id = $1", message_id)

    async def get_by_wamid(self, wamid: str) -> Message | None:
        return await self._one(f"SELECT {_COLUMNS} {_FROM} WHERE m.wamid = $1", wamid)

    async def _one(self, sql: str, *args: Any) -> Message | None:
        row = await self._db.one(sql, *args)
        if row is None:
            return None
        return (await self._with_history([row]))[0]

    async def change_status(
        self,
        message_id: str,
        status: MessageStatus,
        *,
        at: datetime,
        failure: Failure | None = None,
        details: dict[str, Any] | None = None,
        wamid: str | None = None,
    ) -> bool:
        # The row is locked from the read of its status to its update, so a concurrent
        # status (a webhook beside the sender) cannot move it backwards in between.
        current = await self._db.val(
            "SELECT status FROM messages WHERE id = $1 FOR UPDATE", message_id
        )
        if current is None:
            return False
        await self._db.run(
            _INSERT_STATUS,
            message_id,
            status.value,
            at,
            failure.code if failure else None,
            failure.reason if failure else None,
            details,
        )
        moves = status.may_follow(MessageStatus(current))
        if moves:
            self._db.announce(Topic.CALLBACKS)  # a callback may be due
            await self._db.run(
                "UPDATE messages SET status = $2, failure_code = $3, failure_reason = $4,"
                " wamid = coalesce($5, wamid), updated_at = $6 WHERE id = $1",
                message_id,
                status.value,
                failure.code if failure else None,
                failure.reason if failure else None,
                wamid,
                at,
            )
        elif wamid is not None:
            await self._db.run(
                "UPDATE messages SET wamid = coalesce(wamid, $2) WHERE id = $1", message_id, wamid
            )
        return moves

    async def marketing_sent_count(self, contact_id: int, *, since: datetime) -> int:
        found = await self._db.val(
            "SELECT count(*) FROM messages WHERE contact_id = $1"
            f" AND content_kind = 'MARKETING' AND status IN {HANDED_OVER}"
            " AND handed_over_at >= $2",
            contact_id,
            since,
        )
        return int(found or 0)

    async def find(self, where: MessageFilter) -> list[Message]:
        clauses, params = filter_sql(where)
        if where.after_id is not None:
            params.append(where.after_id)
            clauses.append(f"m.id > ${len(params)}")
        if where.before_id is not None:
            params.append(where.before_id)
            clauses.append(f"m.id < ${len(params)}")
        condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if where.before_id is not None else ""
        params.append(where.limit)
        rows = list(
            await self._db.all(
                f"SELECT {_COLUMNS} {_FROM} {condition} ORDER BY m.id {order} LIMIT ${len(params)}",
                *params,
            )
        )
        if order:
            rows.reverse()
        return await self._with_history(rows)

    async def _with_history(self, rows: list[Any]) -> list[Message]:
        history: dict[str, list[StatusChange]] = {row["id"]: [] for row in rows}
        if history:
            for change in await self._db.all(
                "SELECT message_id, status, at, failure_code, failure_reason, details"
                " FROM message_statuses WHERE message_id = ANY($1::text[]) ORDER BY id",
                list(history),
            ):
                add_to_history(history[change["message_id"]], status_change_from_row(change))
        return [
            Message(
                id=row["id"],
                direction=Direction(row["direction"]),
                channel=Channel(row["channel"]) if row["channel"] else None,
                contact_id=row["contact_id"],
                contact=row["contact"],
                kind=row["kind"],
                text=row["text"],
                template=TemplateRef.model_validate(row["template"]) if row["template"] else None,
                payload=row["payload"],
                status=MessageStatus(row["status"]),
                failure=failure_of(row["failure_code"], row["failure_reason"]),
                held_until=row["held_until"],
                history=tuple(history[row["id"]]),
                wamid=row["wamid"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    async def set_pricing(self, message_id: str, pricing: Pricing) -> None:
        await self._db.run(
            "UPDATE messages SET billable = $1, pricing_model = $2, pricing_type = $3,"
            " pricing_category = $4 WHERE id = $5",
            pricing.billable,
            pricing.pricing_model,
            pricing.type,
            pricing.category,
            message_id,
        )

    async def pricing(self, message_id: str) -> Pricing | None:
        row = await self._db.one(
            "SELECT billable, pricing_model, pricing_type, pricing_category FROM messages"
            " WHERE id = $1",
            message_id,
        )
        if row is None or (row["pricing_model"] is None and row["billable"] is None):
            return None
        return Pricing(
            row["billable"], row["pricing_model"], row["pricing_type"], row["pricing_category"]
        )

    async def billing(
        self, where: MessageFilter | None = None, *, broadcast_id: str | None = None
    ) -> list[BillingLine]:
        clauses, params = filter_sql(where) if where is not None else ([], [])
        source = "messages m"
        if broadcast_id is not None:
            source = "broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            params.append(broadcast_id)
            clauses.append(f"r.broadcast_id = ${len(params)}")
        condition = " AND ".join(
            ["m.direction = 'outbound'", "m.pricing_category IS NOT NULL", *clauses]
        )
        rows = await self._db.all(
            "SELECT m.pricing_category AS category, count(*) AS n,"
            " count(*) FILTER (WHERE m.billable) AS billable"
            f" FROM {source} WHERE {condition} GROUP BY m.pricing_category ORDER BY 1",
            *params,
        )
        return [BillingLine(r["category"], int(r["n"]), int(r["billable"])) for r in rows]

from __future__ import annotations

import json
import sqlite3
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
from engine.store.sqlite.db import Db, from_db, json_or_none, to_db

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
"""What every new message row is written with: :meth:`SqliteMessageRepo.insert` writes
these, the outbox's ``add`` and ``add_batch`` these and its own, all from
:func:`message_values`, so no way of creating a message forgets one."""

_INSERT_WITH_NUMBER = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}, phone_number_id)"
    f" VALUES ({', '.join('?' * (len(MESSAGE_COLUMNS) + 1))})"
)

_NO_OPTIONS = Options()

HANDED_OVER = "('sending', 'sent', 'delivered', 'read', 'played')"
"""Statuses of a message given to Meta, or being given (a ``sending`` row holds its place
under the frequency cap until its outcome is known)."""


def message_values(message: Message, policy: PolicyInputs | None) -> tuple[Any, ...]:
    """The values of :data:`MESSAGE_COLUMNS` for ``message``; ``policy``: what the send
    rules were asked about it (None for inbound messages)."""
    failure = message.failure
    options = policy.options if policy is not None else _NO_OPTIONS
    return (
        message.id,
        message.direction.value,
        message.channel.value if message.channel else None,
        message.contact_id,
        message.kind,
        message.text,
        message.template.model_dump_json() if message.template else None,
        json_or_none(message.payload),
        message.status.value,
        failure.code if failure else None,
        failure.reason if failure else None,
        message.wamid,
        to_db(message.created_at),
        to_db(message.updated_at),
        policy.kind.value if policy is not None else None,
        int(options.opted_in_only),
        int(options.confirmed_opted_out),
        str(hours) if (hours := options.quiet_hours) is not None else None,
        to_db(message.held_until) if message.held_until is not None else None,
    )


def filter_sql(where: MessageFilter) -> tuple[list[str], list[Any]]:
    """The conditions on ``messages m`` of ``where``'s fields but ``limit`` and
    ``after_id`` (each caller pages its own way), with their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if where.channel is not None:
        clauses.append("m.channel = ?")
        params.append(where.channel.value)
    if where.status is not None:
        clauses.append("m.status = ?")
        params.append(where.status.value)
    if where.since is not None:
        clauses.append("m.created_at >= ?")
        params.append(to_db(where.since))
    if where.until is not None:
        clauses.append("m.created_at < ?")
        params.append(to_db(where.until))
    if where.contact_id is not None:
        clauses.append("m.contact_id = ?")
        params.append(where.contact_id)
    if where.failure_code is not None:
        clauses.append("m.failure_code = ?")
        params.append(where.failure_code)
    return clauses, params


def _failure(code: str | None, reason: str | None) -> Failure | None:
    return None if code is None else Failure(code=code, reason=reason or "")


class SqliteMessageRepo(MessageRepo):
    def __init__(self, db: Db) -> None:
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
            (*message_values(message, policy), phone_number_id),
        )
        if not inserted:
            return False
        failure = message.failure
        rows = [
            (
                message.id,
                change.status.value,
                to_db(change.at),
                change.failure.code if change.failure else None,
                change.failure.reason if change.failure else None,
                json_or_none(change.details),
            )
            for change in message.history
            or (StatusChange(status=message.status, at=message.created_at, failure=failure),)
        ]
        sql = (
            "INSERT INTO message_statuses (message_id, status, at, failure_code,"
            " failure_reason, details) VALUES (?, ?, ?, ?, ?, ?)"
        )
        if len(rows) == 1:  # nearly always: executemany's setup costs more than the row
            await self._db.run(sql, rows[0])
        else:
            await self._db.many(sql, rows)
        return True

    async def get(self, message_id: str) -> Message | None:
        return await self._one(f"SELECT {_COLUMNS} {_FROM} WHERE m.id = ?", (message_id,))

    async def get_by_wamid(self, wamid: str) -> Message | None:
        return await self._one(f"SELECT {_COLUMNS} {_FROM} WHERE m.wamid = ?", (wamid,))

    async def _one(self, sql: str, params: tuple[Any, ...]) -> Message | None:
        row = await self._db.one(sql, params)
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
        row = await self._db.one("SELECT status FROM messages WHERE id = ?", (message_id,))
        if row is None:
            return False
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code,"
            " failure_reason, details) VALUES (?, ?, ?, ?, ?, ?)",
            (
                message_id,
                status.value,
                to_db(at),
                failure.code if failure else None,
                failure.reason if failure else None,
                json_or_none(details),
            ),
        )
        moves = status.may_follow(MessageStatus(row["status"]))
        if moves:
            self._db.announce(Topic.CALLBACKS)  # a callback may be due
            await self._db.run(
                "UPDATE messages SET status = ?, failure_code = ?, failure_reason = ?,"
                " wamid = coalesce(?, wamid), updated_at = ? WHERE id = ?",
                (
                    status.value,
                    failure.code if failure else None,
                    failure.reason if failure else None,
                    wamid,
                    to_db(at),
                    message_id,
                ),
            )
        elif wamid is not None:
            await self._db.run(
                "UPDATE messages SET wamid = coalesce(wamid, ?) WHERE id = ?", (wamid, message_id)
            )
        return moves

    async def marketing_sent_count(self, contact_id: int, *, since: datetime) -> int:
        row = await self._db.one(
            "SELECT count(*) AS n FROM messages WHERE contact_id = ?"
            f" AND content_kind = 'MARKETING' AND status IN {HANDED_OVER}"
            " AND handed_over_at >= ?",
            (contact_id, to_db(since)),
        )
        return int(row["n"]) if row else 0

    async def find(self, where: MessageFilter) -> list[Message]:
        clauses, params = filter_sql(where)
        if where.after_id is not None:
            clauses.append("m.id > ?")
            params.append(where.after_id)
        if where.before_id is not None:
            clauses.append("m.id < ?")
            params.append(where.before_id)
        condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if where.before_id is not None else ""
        rows = await self._db.all(
            f"SELECT {_COLUMNS} {_FROM} {condition} ORDER BY m.id {order} LIMIT ?",
            (*params, where.limit),
        )
        if order:
            rows.reverse()
        return await self._with_history(rows)

    async def _with_history(self, rows: list[sqlite3.Row]) -> list[Message]:
        history: dict[str, list[StatusChange]] = {row["id"]: [] for row in rows}
        ids = list(history)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for change in await self._db.all(
                "SELECT message_id, status, at, failure_code, failure_reason, details"
                f" FROM message_statuses WHERE message_id IN ({','.join('?' * len(chunk))})"
                " ORDER BY id",
                chunk,
            ):
                add_to_history(
                    history[change["message_id"]],
                    StatusChange(
                        status=MessageStatus(change["status"]),
                        at=from_db(change["at"]),
                        failure=_failure(change["failure_code"], change["failure_reason"]),
                        details=json.loads(change["details"]) if change["details"] else None,
                    ),
                )
        return [
            Message(
                id=row["id"],
                direction=Direction(row["direction"]),
                channel=Channel(row["channel"]) if row["channel"] else None,
                contact_id=row["contact_id"],
                contact=row["contact"],
                kind=row["kind"],
                text=row["text"],
                template=TemplateRef.model_validate_json(row["template"])
                if row["template"]
                else None,
                payload=json.loads(row["payload"]) if row["payload"] else None,
                status=MessageStatus(row["status"]),
                failure=_failure(row["failure_code"], row["failure_reason"]),
                held_until=from_db(row["held_until"]) if row["held_until"] else None,
                history=tuple(history[row["id"]]),
                wamid=row["wamid"],
                created_at=from_db(row["created_at"]),
                updated_at=from_db(row["updated_at"]),
            )
            for row in rows
        ]

    async def set_pricing(self, message_id: str, pricing: Pricing) -> None:
        await self._db.run(
            "UPDATE messages SET billable = ?, pricing_model = ?, pricing_type = ?,"
            " pricing_category = ? WHERE id = ?",
            (
                None if pricing.billable is None else int(pricing.billable),
                pricing.pricing_model,
                pricing.type,
                pricing.category,
                message_id,
            ),
        )

    async def pricing(self, message_id: str) -> Pricing | None:
        row = await self._db.one(
            "SELECT billable, pricing_model, pricing_type, pricing_category FROM messages"
            " WHERE id = ?",
            (message_id,),
        )
        if row is None or (row["pricing_model"] is None and row["billable"] is None):
            return None
        billable = None if row["billable"] is None else bool(row["billable"])
        return Pricing(billable, row["pricing_model"], row["pricing_type"], row["pricing_category"])

    async def billing(
        self, where: MessageFilter | None = None, *, broadcast_id: str | None = None
    ) -> list[BillingLine]:
        clauses, params = filter_sql(where) if where is not None else ([], [])
        source = "messages m"
        if broadcast_id is not None:
            source = "broadcast_recipients r JOIN messages m ON m.id = r.message_id"
            clauses.append("r.broadcast_id = ?")
            params.append(broadcast_id)
        condition = " AND ".join(
            ["m.direction = 'outbound'", "m.pricing_category IS NOT NULL", *clauses]
        )
        rows = await self._db.all(
            "SELECT m.pricing_category AS category, count(*) AS n,"
            " coalesce(sum(m.billable), 0) AS billable"
            f" FROM {source} WHERE {condition} GROUP BY m.pricing_category ORDER BY 1",
            params,
        )
        return [BillingLine(r["category"], int(r["n"]), int(r["billable"])) for r in rows]

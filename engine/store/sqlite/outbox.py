from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.models.marketing_limits import QuietHours
from engine.models.message import (
    Channel,
    Direction,
    Failure,
    Message,
    MessageStatus,
    TemplateRef,
)
from engine.send_rules import TEMPLATE_PAUSED, ContentKind, Options
from engine.store.announcements import Topic
from engine.store.messages import MessageFilter, PolicyInputs
from engine.store.outbox import (
    Claimed,
    Deferred,
    Failed,
    FailureCount,
    Held,
    MessageBatch,
    Numbers,
    OutboxRepo,
    OutboxState,
    Outcome,
    Released,
    ReportRow,
    Retry,
    Schedule,
    Sent,
    Waiting,
    Withheld,
)
from engine.store.sqlite.db import Db, from_db, from_db_opt, json_or_none, to_db
from engine.store.sqlite.messages import (
    HANDED_OVER,
    MESSAGE_COLUMNS,
    filter_sql,
    message_values,
)

# Only the head of a contact's queue may go: one message at a time per contact, in order.
# A message held for quiet hours (the one parameter: now) or waiting for its template
# (paused at Meta) does not hold up the others: a reply to the customer goes while the
# night's marketing waits; and nothing goes while another message of the contact is
# being sent (a held one may come due meanwhile), so a contact has one row ``sending``
# at a time, which the frequency cap relies on.
_HEAD_OF_QUEUE = """NOT EXISTS (
    SELECT 1 FROM messages e
    WHERE e.contact_id = m.contact_id AND e.id <> m.id AND (e.status = 'sending'
      OR (e.status = 'queued' AND e.id < m.id AND e.template_wait IS NULL
          AND NOT (e.held_until IS NOT NULL AND e.held_until > ?))))"""

_TEMPLATE_NOW = """(SELECT t.{column} FROM templates t
    WHERE t.name = messages.template ->> '$.name'
      AND t.language = messages.template ->> '$.language')"""

_PENDING = "('queued', 'sending')"
_DELIVERED = "('sent', 'delivered', 'read', 'played')"

_CHECKED_BEFORE_SENDING = json.dumps({"opt_in_checked": "before_sending"})


_OUTBOX_COLUMNS = (
    "priority",
    "recipient",
    "next_attempt_at",
    "phone_number_id",
    "idempotency_key",
    "callback_url",
    "request_body",
)
_OUTBOUND_COLUMNS = MESSAGE_COLUMNS + _OUTBOX_COLUMNS
_INSERT_OUTBOUND = (
    f"INSERT INTO messages ({', '.join(_OUTBOUND_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_OUTBOUND_COLUMNS))})"
)
# add_batch: where in each recipient's JSON array the columns that differ by recipient are.
_PER_RECIPIENT = {"id": 0, "contact_id": 1, "recipient": 2, "request_body": 3}


def _outbox_values(message: Message, schedule: Schedule) -> tuple[Any, ...]:
    """The values of ``_OUTBOX_COLUMNS``: only a queued message is due."""
    queued = message.status is MessageStatus.QUEUED
    return (
        schedule.priority,
        schedule.recipient,
        to_db(schedule.due_at) if queued else None,
        schedule.phone_number_id,
        schedule.idempotency_key,
        schedule.callback_url,
        schedule.request_body,
    )


_CHANNELS = {channel.value: channel for channel in Channel}


@functools.cache
def _policy_inputs(
    kind: str | None, opted_in_only: int, confirmed_opted_out: int, quiet_hours: str | None
) -> PolicyInputs | None:
    """The stored inputs of the send rules (a handful of combinations, made once each)."""
    if kind is None:
        return None  # queued before they were kept: the sender does not send it
    options = Options(
        opted_in_only=bool(opted_in_only),
        confirmed_opted_out=bool(confirmed_opted_out),
        quiet_hours=QuietHours.parse(quiet_hours) if quiet_hours else None,
    )
    return PolicyInputs(ContentKind(kind), options)


def _failure(code: str | None, reason: str | None) -> Failure | None:
    return None if code is None else Failure(code=code, reason=reason or "")


def _outbound_sql(where: MessageFilter) -> tuple[str, list[Any]]:
    clauses, params = filter_sql(where)
    return " AND ".join(["m.direction = 'outbound'", *clauses]), params


def _held(numbers: Numbers | None) -> tuple[str, tuple[str, ...]]:
    """The condition (and its parameters) that keeps a claim to the numbers held."""
    if numbers is None:
        return "", ()
    return (
        " AND coalesce(m.phone_number_id, ?) IN (SELECT value FROM json_each(?))",
        (numbers.default, json.dumps(sorted(numbers.held))),
    )


class SqliteOutboxRepo(OutboxRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, message: Message, schedule: Schedule) -> None:
        if message.status is MessageStatus.QUEUED:
            self._db.announce(Topic.OUTBOX)
        # The message's columns and the outbox's: one row, one statement.
        await self._db.run(
            _INSERT_OUTBOUND,
            message_values(message, schedule.policy) + _outbox_values(message, schedule),
        )
        failure = message.failure
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code, failure_reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                message.id,
                message.status.value,
                to_db(message.created_at),
                failure.code if failure else None,
                failure.reason if failure else None,
            ),
        )

    async def add_batch(self, batch: MessageBatch) -> None:
        # The columns of add(), made by the same functions for a stand-in message of each
        # outcome (queued, skipped, ...); what differs by recipient comes from one JSON
        # parameter: one statement per outcome.
        groups: dict[tuple[MessageStatus, Failure | None], list[list[Any]]] = {}
        if any(m.status is MessageStatus.QUEUED for m in batch.messages):
            self._db.announce(Topic.OUTBOX)
        for m in batch.messages:
            groups.setdefault((m.status, m.failure), []).append(
                [m.message_id, m.contact_id, m.recipient, m.request_body]
            )
        moment = to_db(batch.created_at)
        select = ", ".join(
            f"r.value ->> {_PER_RECIPIENT[column]}" if column in _PER_RECIPIENT else "?"
            for column in _OUTBOUND_COLUMNS
        )
        for (status, failure), members in groups.items():
            rows = json.dumps(members, separators=(",", ":"), ensure_ascii=False)
            stand_in = Message.model_construct(
                id="",
                direction=Direction.OUTBOUND,
                channel=batch.channel,
                contact_id=0,
                contact="",
                kind=batch.kind,
                text=batch.text,
                template=batch.template,
                payload=batch.payload,
                status=status,
                failure=failure,
                wamid=None,
                created_at=batch.created_at,
                updated_at=batch.created_at,
            )
            schedule = Schedule(
                priority=batch.priority,
                recipient="",
                due_at=batch.created_at,
                policy=batch.policy,
                phone_number_id=batch.phone_number_id,
            )
            values = message_values(stand_in, batch.policy) + _outbox_values(stand_in, schedule)
            shared = [
                value
                for column, value in zip(_OUTBOUND_COLUMNS, values, strict=True)
                if column not in _PER_RECIPIENT
            ]
            await self._db.run(
                f"INSERT INTO messages ({', '.join(_OUTBOUND_COLUMNS)})"
                f" SELECT {select} FROM json_each(?) r",
                (*shared, rows),
            )
            code, reason = (failure.code, failure.reason) if failure else (None, None)
            await self._db.run(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason) SELECT r.value ->> 0, ?, ?, ?, ? FROM json_each(?) r",
                (status.value, moment, code, reason, rows),
            )

    async def find_by_idempotency_key(self, key: str) -> str | None:
        row = await self._db.one("SELECT id FROM messages WHERE idempotency_key = ?", (key,))
        return None if row is None else str(row["id"])

    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        expired: bool = True,
        numbers: Numbers | None = None,
        marketing_since: datetime | None = None,
    ) -> list[Claimed]:
        moment = to_db(now)
        held, held_params = _held(numbers)
        # Without a frequency cap nothing is counted (no row is that recent).
        since = to_db(marketing_since) if marketing_since is not None else "9999"
        claim = (
            "UPDATE messages SET status = 'sending', lease_owner = ?, lease_until = ?,"
            " attempts = attempts + 1, handed_over_at = ?,"
            " ambiguous_attempts = ambiguous_attempts + (status = 'sending')"
            " WHERE id IN ({candidates}) RETURNING id, contact_id, recipient,"
            " phone_number_id, priority, next_attempt_at, request_body, attempts, channel,"
            " content_kind, opted_in_only, confirmed_opted_out,"
            # The opt-in and the window as they are now: the sender asks the rules again.
            " (SELECT c.marketing_opt_in FROM contacts c WHERE c.id = messages.contact_id),"
            # The window of the number the row goes out from (see enqueue.last_inbound).
            " coalesce((SELECT w.last_inbound_at FROM number_windows w"
            " WHERE w.contact_id = messages.contact_id"
            " AND w.phone_number_id = messages.phone_number_id),"
            " (SELECT v.last_inbound_at FROM conversations v"
            " WHERE v.contact_id = messages.contact_id AND (messages.phone_number_id IS NULL"
            " OR v.last_phone_number_id IS NULL))),"
            # What the marketing limits need: the stored quiet hours, the contact's local
            # time zone, and the MARKETING templates handed over to them in the cap's
            # period (a template counts as what the catalogue says it is now). The
            # contact's other rows are neither sending nor claimed now (the head of the
            # queue only), so the count holds until this one's outcome.
            " quiet_hours,"
            " (SELECT c.wa_id FROM contacts c WHERE c.id = messages.contact_id),"
            " (SELECT c.attributes ->> '$.timezone' FROM contacts c"
            " WHERE c.id = messages.contact_id),"
            f" CASE WHEN coalesce({_TEMPLATE_NOW.format(column='category')}, content_kind)"
            " = 'MARKETING' THEN (SELECT count(*) FROM messages e"
            " WHERE e.contact_id = messages.contact_id AND e.content_kind = 'MARKETING'"
            f" AND e.status IN {HANDED_OVER} AND e.handed_over_at >= ? AND e.id <> messages.id)"
            " ELSE 0 END,"
            # The template as the catalogue has it now: Meta may have paused or
            # recategorised it while the message waited.
            f" {_TEMPLATE_NOW.format(column='category')},"
            f" {_TEMPLATE_NOW.format(column='status')}, deferrals,"
            " messages.template ->> '$.name' || '/' || (messages.template ->> '$.language')"
        )
        # The writer runs one job at a time, so the sub-selects and the update are atomic
        # here; PostgreSQL selects with FOR UPDATE SKIP LOCKED instead.
        taken_over: list[sqlite3.Row] = []
        taken_over_count = 0
        if expired:
            taken_over = await self._db.all(
                claim.format(
                    candidates="SELECT m.id FROM messages m WHERE m.status = 'sending'"
                    f" AND m.lease_until <= ? AND m.wamid IS NULL AND {_HEAD_OF_QUEUE}{held}"
                    " ORDER BY m.lease_until LIMIT ?"
                ),
                (owner, to_db(lease_until), moment, moment, moment, *held_params, limit, since),
            )
            # Messages deferred by Meta's per-user marketing limit whose time has come
            # (hours later: looked for with the expired leases, not every claim).
            taken_over_count = len(taken_over)
            taken_over += await self._db.all(
                claim.format(
                    candidates="SELECT m.id FROM messages m WHERE m.status = 'deferred'"
                    f" AND m.next_attempt_at <= ? AND {_HEAD_OF_QUEUE}{held}"
                    " ORDER BY m.next_attempt_at LIMIT ?"
                ),
                (
                    owner,
                    to_db(lease_until),
                    moment,
                    moment,
                    moment,
                    *held_params,
                    limit - taken_over_count,
                    since,
                ),
            )
        due = await self._db.all(
            claim.format(
                candidates="SELECT m.id FROM messages m WHERE m.status = 'queued'"
                f" AND m.next_attempt_at <= ? AND {_HEAD_OF_QUEUE}{held}"
                " ORDER BY m.priority, m.next_attempt_at, m.id LIMIT ?"
            ),
            (
                owner,
                to_db(lease_until),
                moment,
                moment,
                moment,
                *held_params,
                limit - len(taken_over),
                since,
            ),
        )
        reclaimed = taken_over_count if expired else 0
        rows = [(index < reclaimed, row) for index, row in enumerate([*taken_over, *due])]
        # Most urgent first, as the claim chose them: priority, due time, age.
        rows.sort(key=lambda taken: (taken[1][4], taken[1][5], taken[1][0]))
        return [
            Claimed(
                message_id=row[0],
                contact_id=row[1],
                recipient=row[2],
                phone_number_id=row[3],
                priority=row[4],
                request_body=row[6].encode() if row[6] is not None else None,
                attempts=row[7],
                reclaimed=was_reclaimed,
                channel=_CHANNELS.get(row[8]),
                policy=_policy_inputs(row[9], row[10], row[11], row[14]),
                opted_in=bool(row[12]),
                last_inbound_at=from_db_opt(row[13]),
                wa_id=row[15],
                timezone=row[16] if isinstance(row[16], str) else None,
                marketing_sent=int(row[17]),
                template_category=row[18],
                template_status=row[19],
                deferrals=row[20],
                template=row[21],
            )
            for was_reclaimed, row in rows
        ]

    async def has_due(self, now: datetime, numbers: Numbers | None = None) -> bool:
        moment = to_db(now)
        held, held_params = _held(numbers)
        row = await self._db.one(
            "SELECT EXISTS (SELECT 1 FROM messages m WHERE m.status = 'queued'"
            f" AND m.next_attempt_at <= ?{held}) OR EXISTS (SELECT 1 FROM messages m"
            f" WHERE m.status = 'sending' AND m.lease_until <= ? AND m.wamid IS NULL{held})"
            " OR EXISTS (SELECT 1 FROM messages m WHERE m.status = 'deferred'"
            f" AND m.next_attempt_at <= ?{held}) AS due",
            (moment, *held_params, moment, *held_params, moment, *held_params),
        )
        return bool(row and row["due"])

    async def record(self, owner: str, outcomes: Sequence[Outcome], *, now: datetime) -> None:
        moment = to_db(now)
        if any(not isinstance(o, (Released, Retry)) for o in outcomes):
            self._db.announce(Topic.CALLBACKS)  # a status changed: a callback may be due
        sent = [o for o in outcomes if isinstance(o, Sent)]
        retries = [o for o in outcomes if isinstance(o, Retry)]
        failed = [o for o in outcomes if isinstance(o, Failed)]
        released = [o for o in outcomes if isinstance(o, Released)]
        holds = [o for o in outcomes if isinstance(o, Held)]
        withheld = [o for o in outcomes if isinstance(o, Withheld)]
        waiting = [o for o in outcomes if isinstance(o, Waiting)]
        deferred = [o for o in outcomes if isinstance(o, Deferred)]
        if sent:
            # The whole batch as one JSON parameter: two statements, whatever its size.
            batch = json.dumps([[o.message_id, o.wamid, o.attempt, o.notice] for o in sent])
            await self._db.run(
                "INSERT INTO message_statuses (message_id, status, at, details)"
                " SELECT m.id, 'sent', ?, CASE WHEN o.value ->> 3 IS NULL"
                " THEN json_object('attempt', o.value ->> 2)"
                " ELSE json_object('attempt', o.value ->> 2, 'notice', o.value ->> 3) END"
                " FROM json_each(?) o JOIN messages m ON m.id = o.value ->> 0"
                f" WHERE m.status IN {_PENDING}"
                # A notice is kept even when Meta's own sent came first (adopted).
                f" OR (o.value ->> 3 IS NOT NULL AND m.status IN {_DELIVERED})",
                (moment, batch),
            )
            await self._db.run(
                "UPDATE messages SET"
                f" updated_at = CASE WHEN status IN {_PENDING} THEN ? ELSE updated_at END,"
                f" status = CASE WHEN status IN {_PENDING} THEN 'sent' ELSE status END,"
                # A deferred message let its wamid go: a late answer to the try Meta held
                # back does not bring it back.
                " wamid = CASE WHEN status = 'deferred' THEN messages.wamid"
                " ELSE coalesce(messages.wamid, o.acknowledged) END, lease_owner = NULL,"
                " lease_until = NULL, last_error = NULL"
                " FROM (SELECT value ->> 0 AS id, value ->> 1 AS acknowledged"
                " FROM json_each(?)) o WHERE messages.id = o.id",
                (moment, batch),
            )
        held = "status = 'sending' AND lease_owner = ?"
        if retries:
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, 'sending', ?, ?, ?, ? FROM messages"
                f" WHERE id = ? AND {held}",
                [
                    (
                        moment,
                        str(o.details.get("code", "")) or None,
                        o.error,
                        json.dumps({**o.details, "retry_at": to_db(o.due_at)}),
                        o.message_id,
                        owner,
                    )
                    for o in retries
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?, last_error = ?,"
                " ambiguous_attempts = ambiguous_attempts + ?, lease_owner = NULL,"
                f" lease_until = NULL, updated_at = ? WHERE id = ? AND {held}",
                [
                    (to_db(o.due_at), o.error, int(o.ambiguous), moment, o.message_id, owner)
                    for o in retries
                ],
            )
        if failed:
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, 'failed', ?, ?, ?, ? FROM messages"
                f" WHERE id = ? AND {held}",
                [
                    (
                        moment,
                        o.failure.code,
                        o.failure.reason,
                        json_or_none(o.details or None),
                        o.message_id,
                        owner,
                    )
                    for o in failed
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = 'failed', failure_code = ?, failure_reason = ?,"
                " last_error = ?, ambiguous_attempts = ambiguous_attempts + ?,"
                " lease_owner = NULL, lease_until = NULL, updated_at = ?"
                f" WHERE id = ? AND {held}",
                [
                    (
                        o.failure.code,
                        o.failure.reason,
                        o.failure.reason,
                        int(o.ambiguous),
                        moment,
                        o.message_id,
                        owner,
                    )
                    for o in failed
                ],
            )
        if withheld:
            # Never attempted: recorded as enqueue records the same verdict, the claim's
            # attempt taken back.
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, ?, ?, ?, ?, ? FROM messages"
                f" WHERE id = ? AND {held}",
                [
                    (
                        o.status.value,
                        moment,
                        o.failure.code,
                        o.failure.reason,
                        _CHECKED_BEFORE_SENDING,
                        o.message_id,
                        owner,
                    )
                    for o in withheld
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = ?, failure_code = ?, failure_reason = ?,"
                " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,"
                f" updated_at = ? WHERE id = ? AND {held}",
                [
                    (o.status.value, o.failure.code, o.failure.reason, moment, o.message_id, owner)
                    for o in withheld
                ],
            )
        if released:
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?,"
                " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL"
                f" WHERE id = ? AND {held}",
                [(to_db(o.due_at), o.message_id, owner) for o in released],
            )
        if holds:
            # Not attempted: queued again, due when the quiet hours end, which it shows.
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = ?, held_until = ?,"
                " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,"
                f" updated_at = ? WHERE id = ? AND {held}",
                [(to_db(o.until), to_db(o.until), moment, o.message_id, owner) for o in holds],
            )
        if waiting:
            # Queued again and not due: the template's approval makes it due again.
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, 'queued', ?, ?, ?, ? FROM messages"
                f" WHERE id = ? AND {held}",
                [
                    (
                        moment,
                        TEMPLATE_PAUSED,
                        o.reason,
                        json.dumps({"waits_for_template": o.template}),
                        o.message_id,
                        owner,
                    )
                    for o in waiting
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = NULL,"
                " template_wait = ?, attempts = attempts - 1, lease_owner = NULL,"
                f" lease_until = NULL, updated_at = ? WHERE id = ? AND {held}",
                [(o.template, moment, o.message_id, owner) for o in waiting],
            )
        for o in deferred:
            await self._defer(o.message_id, o.failure, o.due_at, moment, f" AND {held}", (owner,))

    async def defer(
        self, message_id: str, *, failure: Failure, due_at: datetime, at: datetime
    ) -> bool:
        self._db.announce(Topic.CALLBACKS)
        return await self._defer(
            message_id, failure, due_at, to_db(at), " AND status NOT IN ('failed', 'skipped')", ()
        )

    async def _defer(
        self,
        message_id: str,
        failure: Failure,
        due_at: datetime,
        moment: str,
        condition: str,
        params: tuple[Any, ...],
    ) -> bool:
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code,"
            " failure_reason, details) SELECT id, 'deferred', ?, ?, ?,"
            " json_object('retry_at', ?, 'previous_wamid', wamid) FROM messages"
            f" WHERE id = ?{condition}",
            (
                moment,
                failure.code,
                failure.reason,
                to_db(due_at),
                message_id,
                *params,
            ),
        )
        # The wamid is let go: the next try gets its own, and the old one's late
        # statuses no longer move the message.
        changed = await self._db.run(
            "UPDATE messages SET status = 'deferred', next_attempt_at = ?, wamid = NULL,"
            " deferrals = deferrals + 1, last_error = ?, lease_owner = NULL,"
            f" lease_until = NULL, updated_at = ? WHERE id = ?{condition}",
            (to_db(due_at), failure.reason, moment, message_id, *params),
        )
        return changed > 0

    async def adopt_wamid(self, message_id: str, wamid: str, *, at: datetime) -> bool:
        moment = to_db(at)
        without_wamid = "id = ? AND wamid IS NULL AND direction = 'outbound'"
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, details)"
            " SELECT id, 'sent', ?, ? FROM messages"
            f" WHERE {without_wamid} AND status IN {_PENDING}",
            (moment, json.dumps({"adopted_from_status": True}), message_id),
        )
        changed = await self._db.run(
            "UPDATE messages SET"
            f" updated_at = CASE WHEN status IN {_PENDING} THEN ? ELSE updated_at END,"
            f" status = CASE WHEN status IN {_PENDING} THEN 'sent' ELSE status END,"
            f" wamid = ?, lease_owner = NULL, lease_until = NULL WHERE {without_wamid}",
            (moment, wamid, message_id),
        )
        return changed > 0

    async def state(self, message_id: str) -> OutboxState | None:
        row = await self._db.one(
            "SELECT attempts, ambiguous_attempts, last_error, next_attempt_at, priority,"
            " idempotency_key, callback_url, template_wait, deferrals FROM messages"
            " WHERE id = ?",
            (message_id,),
        )
        if row is None:
            return None
        return OutboxState(
            attempts=row["attempts"],
            ambiguous_attempts=row["ambiguous_attempts"],
            last_error=row["last_error"],
            next_attempt_at=from_db_opt(row["next_attempt_at"]),
            priority=row["priority"],
            idempotency_key=row["idempotency_key"],
            callback_url=row["callback_url"],
            waits_for_template=row["template_wait"],
            deferrals=row["deferrals"],
        )

    async def report(self, where: MessageFilter) -> list[ReportRow]:
        condition, params = _outbound_sql(where)
        if where.after_id is not None:
            condition += " AND m.id > ?"
            params.append(where.after_id)
        rows = await self._db.all(
            "SELECT m.id, coalesce(m.recipient, c.wa_id, c.user_id) AS recipient, m.channel,"
            " m.template, m.status, m.failure_code, m.failure_reason, m.attempts,"
            " m.ambiguous_attempts, m.wamid, m.created_at, m.updated_at, m.held_until"
            " FROM messages m JOIN contacts c ON c.id = m.contact_id"
            f" WHERE {condition} ORDER BY m.id LIMIT ?",
            (*params, where.limit),
        )
        return [_report_row(row) for row in rows]

    async def failure_summary(self, where: MessageFilter) -> list[FailureCount]:
        condition, params = _outbound_sql(where)
        rows = await self._db.all(
            "SELECT m.failure_code AS code, min(m.failure_reason) AS reason, count(*) AS n"
            f" FROM messages m WHERE {condition} AND m.failure_code IS NOT NULL"
            " GROUP BY m.failure_code ORDER BY n DESC, m.failure_code",
            params,
        )
        return [FailureCount(row["code"], row["reason"] or "", int(row["n"])) for row in rows]

    async def report_counts(self, where: MessageFilter) -> dict[str, int]:
        condition, params = _outbound_sql(where)
        rows = await self._db.all(
            "SELECT m.status, count(*) AS n, sum(m.ambiguous_attempts > 0) AS ambiguous"
            f" FROM messages m WHERE {condition} GROUP BY m.status",
            params,
        )
        counts = {row["status"]: int(row["n"]) for row in rows}
        counts["ambiguous"] = sum(int(row["ambiguous"] or 0) for row in rows)
        return counts


def _report_row(row: sqlite3.Row) -> ReportRow:
    return ReportRow(
        id=row["id"],
        to=row["recipient"],
        channel=Channel(row["channel"]) if row["channel"] else None,
        template=TemplateRef.model_validate_json(row["template"]) if row["template"] else None,
        status=MessageStatus(row["status"]),
        failure=_failure(row["failure_code"], row["failure_reason"]),
        attempts=row["attempts"],
        ambiguous_attempts=row["ambiguous_attempts"],
        wamid=row["wamid"],
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        held_until=from_db_opt(row["held_until"]),
    )

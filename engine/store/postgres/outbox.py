from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

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
from engine.store.postgres.db import PgDb
from engine.store.postgres.messages import (
    HANDED_OVER,
    MESSAGE_COLUMNS,
    failure_of,
    filter_sql,
    message_values,
)

# Only the head of a contact's queue may go: one message at a time per contact, in order.
# Two claims at once cannot both take a contact's message: a claim takes only heads, and
# every job is SERIALIZABLE, so two claims that read the same contact's rows conflict.
# A message held for quiet hours ($7: now) or waiting for its template (paused at Meta)
# does not hold up the others: a reply to the customer goes while the night's marketing
# waits; and nothing goes while another message of the contact is being sent (a held
# one may come due meanwhile), so a contact has one row ``sending`` at a time, which the
# frequency cap relies on.
_HEAD_OF_QUEUE = """NOT EXISTS (
    SELECT 1 FROM messages e
    WHERE e.contact_id = m.contact_id AND e.id <> m.id AND (e.status = 'sending'
      OR (e.status = 'queued' AND e.id < m.id AND e.template_wait IS NULL
          AND NOT (e.held_until IS NOT NULL AND e.held_until > $7))))"""

_PENDING = "('queued', 'sending')"
_DELIVERED = "('sent', 'delivered', 'read', 'played')"

_CHECKED_BEFORE_SENDING = {"opt_in_checked": "before_sending"}

# The candidates are locked with SKIP LOCKED, so concurrent claims pass over each
# other's rows, and the CTE is materialized so that set is chosen exactly once; the
# lease is given in the same statement.
_CLAIM = """
WITH picked AS MATERIALIZED ({candidates} FOR UPDATE OF m SKIP LOCKED)
UPDATE messages u SET status = 'sending', lease_owner = $1, lease_until = $2,
    attempts = u.attempts + 1, handed_over_at = $3,
    ambiguous_attempts = u.ambiguous_attempts + (u.status = 'sending')::int
FROM picked WHERE u.id = picked.id
RETURNING u.id, u.contact_id, u.recipient, u.phone_number_id, u.priority,
    u.next_attempt_at, u.request_body, u.attempts, u.channel,
    u.content_kind, u.opted_in_only, u.confirmed_opted_out,
    -- The opt-in and the window as they are now: the sender asks the rules again.
    (SELECT c.marketing_opt_in FROM contacts c WHERE c.id = u.contact_id) AS opted_in,
    -- The window of the number the row goes out from (see enqueue.last_inbound).
    coalesce((SELECT w.last_inbound_at FROM number_windows w
        WHERE w.contact_id = u.contact_id AND w.phone_number_id = u.phone_number_id),
      (SELECT v.last_inbound_at FROM conversations v WHERE v.contact_id = u.contact_id
        AND (u.phone_number_id IS NULL OR v.last_phone_number_id IS NULL)))
        AS last_inbound_at,
    -- What the marketing limits need: the stored quiet hours, the contact's local time
    -- zone, and the MARKETING templates handed over to them since $8 (the start of the
    -- frequency cap's period; NULL: no cap). The contact's other rows are neither sending
    -- nor claimed now (the head of the queue only), so the count holds until this
    -- one's outcome.
    u.quiet_hours,
    (SELECT c.wa_id FROM contacts c WHERE c.id = u.contact_id) AS wa_id,
    (SELECT c.attributes ->> 'timezone' FROM contacts c WHERE c.id = u.contact_id)
        AS timezone,
    CASE WHEN coalesce((SELECT t.category FROM templates t WHERE t.name = u.template ->> 'name'
        AND t.language = u.template ->> 'language'), u.content_kind) = 'MARKETING'
        AND $8::timestamptz IS NOT NULL THEN
        (SELECT count(*) FROM messages e WHERE e.contact_id = u.contact_id
         AND e.content_kind = 'MARKETING' AND e.status IN {handed_over}
         AND e.handed_over_at >= $8 AND e.id <> u.id)
    ELSE 0 END AS marketing_sent,
    -- The template as the catalogue has it now: Meta may have paused or recategorised
    -- it while the message waited.
    (SELECT t.category FROM templates t WHERE t.name = u.template ->> 'name'
        AND t.language = u.template ->> 'language') AS template_category,
    (SELECT t.status FROM templates t WHERE t.name = u.template ->> 'name'
        AND t.language = u.template ->> 'language') AS template_status,
    u.deferrals,
    (u.template ->> 'name') || '/' || (u.template ->> 'language') AS template_key
"""


def _of_numbers(default: str, held: str) -> str:
    """Only rows of the business numbers the sender holds: parameter ``held`` the numbers
    held (NULL: any), ``default`` the number of a row that names none."""
    return (
        f" AND ({held}::text[] IS NULL"
        f" OR coalesce(m.phone_number_id, {default}) = ANY({held}::text[]))"
    )


_HELD = _of_numbers("$5", "$6")
_EXPIRED_LEASES = _CLAIM.format(
    handed_over=HANDED_OVER,
    candidates="SELECT m.id FROM messages m WHERE m.status = 'sending'"
    f" AND m.lease_until <= $3 AND m.wamid IS NULL AND {_HEAD_OF_QUEUE}{_HELD}"
    " ORDER BY m.lease_until LIMIT $4",
)
_DUE = _CLAIM.format(
    handed_over=HANDED_OVER,
    candidates="SELECT m.id FROM messages m WHERE m.status = 'queued'"
    f" AND m.next_attempt_at <= $3 AND {_HEAD_OF_QUEUE}{_HELD}"
    " ORDER BY m.priority, m.next_attempt_at, m.id LIMIT $4",
)
# Messages deferred by Meta's per-user marketing limit whose time has come (hours
# later: looked for with the expired leases, not every claim).
_DEFERRED = _CLAIM.format(
    handed_over=HANDED_OVER,
    candidates="SELECT m.id FROM messages m WHERE m.status = 'deferred'"
    f" AND m.next_attempt_at <= $3 AND {_HEAD_OF_QUEUE}{_HELD}"
    " ORDER BY m.next_attempt_at LIMIT $4",
)
_HAS_DUE = (
    "SELECT EXISTS (SELECT 1 FROM messages m WHERE m.status = 'queued'"
    f" AND m.next_attempt_at <= $1{_of_numbers('$2', '$3')})"
    " OR EXISTS (SELECT 1 FROM messages m WHERE m.status = 'sending'"
    f" AND m.lease_until <= $1 AND m.wamid IS NULL{_of_numbers('$2', '$3')})"
    " OR EXISTS (SELECT 1 FROM messages m WHERE m.status = 'deferred'"
    f" AND m.next_attempt_at <= $1{_of_numbers('$2', '$3')})"
)


def _held_numbers(numbers: Numbers | None) -> tuple[str, list[str] | None]:
    """The parameters of ``_HELD``."""
    if numbers is None:
        return "", None
    return numbers.default, sorted(numbers.held)


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
    f" VALUES ({', '.join(f'${n}' for n in range(1, len(_OUTBOUND_COLUMNS) + 1))})"
)
# add_batch: the columns that differ by recipient, each one array parameter of this type.
_PER_RECIPIENT = {"id": "text", "contact_id": "bigint", "recipient": "text", "request_body": "text"}


def _insert_batch_sql() -> str:
    """add_batch's insert: the shared columns are parameters ``$1..$k`` in column order, the
    per-recipient ones come from unnesting the arrays that follow them."""
    shared = [column for column in _OUTBOUND_COLUMNS if column not in _PER_RECIPIENT]
    placeholders = {column: f"${n}" for n, column in enumerate(shared, start=1)}
    arrays = ", ".join(
        f"${n}::{kind}[]" for n, kind in enumerate(_PER_RECIPIENT.values(), start=len(shared) + 1)
    )
    select = ", ".join(
        f"r.{column}" if column in _PER_RECIPIENT else placeholders[column]
        for column in _OUTBOUND_COLUMNS
    )
    return (
        f"INSERT INTO messages ({', '.join(_OUTBOUND_COLUMNS)}) SELECT {select}"
        f" FROM unnest({arrays}) AS r({', '.join(_PER_RECIPIENT)})"
    )


_INSERT_BATCH = _insert_batch_sql()


def _utc_text(moment: datetime) -> str:
    """A time inside JSON details, written as the SQLite store writes every time.

    >>> _utc_text(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    '2026-03-01T09:30:00.000000Z'
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _outbox_values(message: Message, schedule: Schedule) -> tuple[Any, ...]:
    """The values of ``_OUTBOX_COLUMNS``: only a queued message is due."""
    queued = message.status is MessageStatus.QUEUED
    return (
        schedule.priority,
        schedule.recipient,
        schedule.due_at if queued else None,
        schedule.phone_number_id,
        schedule.idempotency_key,
        schedule.callback_url,
        schedule.request_body,
    )


_CHANNELS = {channel.value: channel for channel in Channel}


@functools.cache
def _policy_inputs(
    kind: str | None, opted_in_only: bool, confirmed_opted_out: bool, quiet_hours: str | None
) -> PolicyInputs | None:
    """The stored inputs of the send rules (a handful of combinations, made once each)."""
    if kind is None:
        return None  # queued before they were kept: the sender does not send it
    options = Options(
        opted_in_only=opted_in_only,
        confirmed_opted_out=confirmed_opted_out,
        quiet_hours=QuietHours.parse(quiet_hours) if quiet_hours else None,
    )
    return PolicyInputs(ContentKind(kind), options)


def _held(owner: str) -> str:
    """Still this worker's: a late outcome of a lease another worker took over is ignored."""
    return f"status = 'sending' AND lease_owner = {owner}"


def _outbound_sql(where: MessageFilter) -> tuple[str, list[Any]]:
    clauses, params = filter_sql(where)
    return " AND ".join(["m.direction = 'outbound'", *clauses]), params


def _claimed(row: Mapping[str, Any], reclaimed: bool) -> Claimed:
    return Claimed(
        message_id=row["id"],
        contact_id=row["contact_id"],
        recipient=row["recipient"],
        phone_number_id=row["phone_number_id"],
        priority=row["priority"],
        request_body=row["request_body"].encode() if row["request_body"] is not None else None,
        attempts=row["attempts"],
        reclaimed=reclaimed,
        channel=_CHANNELS.get(row["channel"]),
        policy=_policy_inputs(
            row["content_kind"],
            row["opted_in_only"],
            row["confirmed_opted_out"],
            row["quiet_hours"],
        ),
        opted_in=bool(row["opted_in"]),
        last_inbound_at=row["last_inbound_at"],
        wa_id=row["wa_id"],
        timezone=row["timezone"],
        marketing_sent=int(row["marketing_sent"]),
        template=row["template_key"],
        template_category=row["template_category"],
        template_status=row["template_status"],
        deferrals=row["deferrals"],
    )


class PgOutboxRepo(OutboxRepo):
    def __init__(self, db: PgDb) -> None:
        self._db = db

    async def add(self, message: Message, schedule: Schedule) -> None:
        if message.status is MessageStatus.QUEUED:
            self._db.announce(Topic.OUTBOX)
        # The message's columns and the outbox's: one row, one statement.
        await self._db.run(
            _INSERT_OUTBOUND,
            *message_values(message, schedule.policy),
            *_outbox_values(message, schedule),
        )
        failure = message.failure
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code, failure_reason)"
            " VALUES ($1, $2, $3, $4, $5)",
            message.id,
            message.status.value,
            message.created_at,
            failure.code if failure else None,
            failure.reason if failure else None,
        )

    async def add_batch(self, batch: MessageBatch) -> None:
        # The columns of add(), made by the same functions for a stand-in message of each
        # outcome (queued, skipped, ...); what differs by recipient comes as one array per
        # column: two statements per outcome, whatever the batch's size.
        groups: dict[tuple[MessageStatus, Failure | None], list[Any]] = {}
        if any(m.status is MessageStatus.QUEUED for m in batch.messages):
            self._db.announce(Topic.OUTBOX)
        for m in batch.messages:
            groups.setdefault((m.status, m.failure), []).append(m)
        for (status, failure), members in groups.items():
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
            ids = [m.message_id for m in members]
            await self._db.run(
                _INSERT_BATCH,
                *shared,
                ids,
                [m.contact_id for m in members],
                [m.recipient for m in members],
                [m.request_body for m in members],
            )
            code, reason = (failure.code, failure.reason) if failure else (None, None)
            await self._db.run(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason) SELECT r.id, $1, $2, $3, $4 FROM unnest($5::text[]) AS r(id)",
                status.value,
                batch.created_at,
                code,
                reason,
                ids,
            )

    async def find_by_idempotency_key(self, key: str) -> str | None:
        found = await self._db.val("SELECT id FROM messages WHERE idempotency_key = $1", key)
        return None if found is None else str(found)

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
        held = _held_numbers(numbers)
        taken_over: list[asyncpg.Record] = []
        deferred: list[asyncpg.Record] = []
        if expired:
            taken_over = await self._db.all(
                _EXPIRED_LEASES, owner, lease_until, now, limit, *held, now, marketing_since
            )
            room = limit - len(taken_over)
            deferred = await self._db.all(
                _DEFERRED, owner, lease_until, now, room, *held, now, marketing_since
            )
        taken = len(taken_over) + len(deferred)
        due = await self._db.all(
            _DUE, owner, lease_until, now, limit - taken, *held, now, marketing_since
        )
        rows = [(row, True) for row in taken_over] + [(row, False) for row in [*deferred, *due]]
        claimed = [_claimed(row, reclaimed) for row, reclaimed in rows]
        next_attempt = {row["id"]: row["next_attempt_at"] for row, _ in rows}
        # Most urgent first, as the claim chose them: priority, due time, age.
        claimed.sort(key=lambda c: (c.priority, next_attempt[c.message_id], c.message_id))
        return claimed

    async def has_due(self, now: datetime, numbers: Numbers | None = None) -> bool:
        return bool(await self._db.val(_HAS_DUE, now, *_held_numbers(numbers)))

    async def record(self, owner: str, outcomes: Sequence[Outcome], *, now: datetime) -> None:
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
            # The whole batch as arrays: two statements, whatever its size.
            ids = [o.message_id for o in sent]
            await self._db.run(
                "INSERT INTO message_statuses (message_id, status, at, details)"
                " SELECT m.id, 'sent', $1, CASE WHEN o.notice IS NULL"
                " THEN jsonb_build_object('attempt', o.attempt)"
                " ELSE jsonb_build_object('attempt', o.attempt, 'notice', o.notice) END"
                " FROM unnest($2::text[], $3::bigint[], $4::text[]) WITH ORDINALITY"
                " AS o(id, attempt, notice, n) JOIN messages m ON m.id = o.id"
                f" WHERE m.status IN {_PENDING}"
                # A notice is kept even when Meta's own sent came first (adopted).
                f" OR (o.notice IS NOT NULL AND m.status IN {_DELIVERED}) ORDER BY o.n",
                now,
                ids,
                [o.attempt for o in sent],
                [o.notice for o in sent],
            )
            await self._db.run(
                "UPDATE messages SET"
                f" updated_at = CASE WHEN status IN {_PENDING} THEN $1 ELSE updated_at END,"
                f" status = CASE WHEN status IN {_PENDING} THEN 'sent' ELSE status END,"
                # A deferred message let its wamid go: a late answer to the try Meta held
                # back does not bring it back.
                " wamid = CASE WHEN status = 'deferred' THEN messages.wamid"
                " ELSE coalesce(messages.wamid, o.acknowledged) END, lease_owner = NULL,"
                " lease_until = NULL, last_error = NULL"
                " FROM unnest($2::text[], $3::text[]) AS o(id, acknowledged)"
                " WHERE messages.id = o.id",
                now,
                ids,
                [o.wamid for o in sent],
            )
        if retries:
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, 'sending', $1, $2, $3, $4::jsonb"
                f" FROM messages WHERE id = $5 AND {_held('$6')}",
                [
                    (
                        now,
                        str(o.details.get("code", "")) or None,
                        o.error,
                        {**o.details, "retry_at": _utc_text(o.due_at)},
                        o.message_id,
                        owner,
                    )
                    for o in retries
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = $1, last_error = $2,"
                " ambiguous_attempts = ambiguous_attempts + $3, lease_owner = NULL,"
                f" lease_until = NULL, updated_at = $4 WHERE id = $5 AND {_held('$6')}",
                [(o.due_at, o.error, int(o.ambiguous), now, o.message_id, owner) for o in retries],
            )
        if failed:
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, 'failed', $1, $2, $3, $4::jsonb"
                f" FROM messages WHERE id = $5 AND {_held('$6')}",
                [
                    (
                        now,
                        o.failure.code,
                        o.failure.reason,
                        o.details or None,
                        o.message_id,
                        owner,
                    )
                    for o in failed
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = 'failed', failure_code = $1, failure_reason = $2,"
                " last_error = $3, ambiguous_attempts = ambiguous_attempts + $4,"
                " lease_owner = NULL, lease_until = NULL, updated_at = $5"
                f" WHERE id = $6 AND {_held('$7')}",
                [
                    (
                        o.failure.code,
                        o.failure.reason,
                        o.failure.reason,
                        int(o.ambiguous),
                        now,
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
                " failure_reason, details) SELECT id, $1, $2, $3, $4, $5::jsonb FROM messages"
                f" WHERE id = $6 AND {_held('$7')}",
                [
                    (
                        o.status.value,
                        now,
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
                "UPDATE messages SET status = $1, failure_code = $2, failure_reason = $3,"
                " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,"
                f" updated_at = $4 WHERE id = $5 AND {_held('$6')}",
                [
                    (o.status.value, o.failure.code, o.failure.reason, now, o.message_id, owner)
                    for o in withheld
                ],
            )
        if released:
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = $1,"
                " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL"
                f" WHERE id = $2 AND {_held('$3')}",
                [(o.due_at, o.message_id, owner) for o in released],
            )
        if holds:
            # Not attempted: queued again, due when the quiet hours end, which it shows.
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = $1, held_until = $1,"
                " attempts = attempts - 1, lease_owner = NULL, lease_until = NULL,"
                f" updated_at = $2 WHERE id = $3 AND {_held('$4')}",
                [(o.until, now, o.message_id, owner) for o in holds],
            )
        if waiting:
            # Queued again and not due: the template's approval makes it due again.
            await self._db.many(
                "INSERT INTO message_statuses (message_id, status, at, failure_code,"
                " failure_reason, details) SELECT id, 'queued', $1, $2, $3, $4::jsonb"
                f" FROM messages WHERE id = $5 AND {_held('$6')}",
                [
                    (
                        now,
                        TEMPLATE_PAUSED,
                        o.reason,
                        {"waits_for_template": o.template},
                        o.message_id,
                        owner,
                    )
                    for o in waiting
                ],
            )
            await self._db.many(
                "UPDATE messages SET status = 'queued', next_attempt_at = NULL,"
                " template_wait = $1, attempts = attempts - 1, lease_owner = NULL,"
                f" lease_until = NULL, updated_at = $2 WHERE id = $3 AND {_held('$4')}",
                [(o.template, now, o.message_id, owner) for o in waiting],
            )
        for o in deferred:
            await self._defer(o.message_id, o.failure, o.due_at, now, owner)

    async def defer(
        self, message_id: str, *, failure: Failure, due_at: datetime, at: datetime
    ) -> bool:
        self._db.announce(Topic.CALLBACKS)
        return await self._defer(message_id, failure, due_at, at)

    async def _defer(
        self,
        message_id: str,
        failure: Failure,
        due_at: datetime,
        at: datetime,
        owner: str | None = None,
    ) -> bool:
        # The sender's outcome applies while its lease holds; a webhook's, to anything
        # not final yet.
        condition = (
            f" AND {_held('$6')}"
            if owner is not None
            else " AND status NOT IN ('failed', 'skipped')"
        )
        extra = (owner,) if owner is not None else ()
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, failure_code,"
            " failure_reason, details) SELECT id, 'deferred', $1, $2, $3,"
            " jsonb_build_object('retry_at', $4::text, 'previous_wamid', wamid) FROM messages"
            f" WHERE id = $5{condition}",
            at,
            failure.code,
            failure.reason,
            _utc_text(due_at),
            message_id,
            *extra,
        )
        # The wamid is let go: the next try gets its own, and the old one's late
        # statuses no longer move the message.
        changed = await self._db.run(
            "UPDATE messages SET status = 'deferred', next_attempt_at = $1, wamid = NULL,"
            " deferrals = deferrals + 1, last_error = $2, lease_owner = NULL,"
            f" lease_until = NULL, updated_at = $3 WHERE id = $5 AND $4::text IS NOT NULL"
            f"{condition}",
            due_at,
            failure.reason,
            at,
            "",
            message_id,
            *extra,
        )
        return changed > 0

    async def adopt_wamid(self, message_id: str, wamid: str, *, at: datetime) -> bool:
        without_wamid = "id = $1 AND wamid IS NULL AND direction = 'outbound'"
        await self._db.run(
            "INSERT INTO message_statuses (message_id, status, at, details)"
            " SELECT id, 'sent', $2, $3::jsonb FROM messages"
            f" WHERE {without_wamid} AND status IN {_PENDING}",
            message_id,
            at,
            {"adopted_from_status": True},
        )
        changed = await self._db.run(
            "UPDATE messages SET"
            f" updated_at = CASE WHEN status IN {_PENDING} THEN $2 ELSE updated_at END,"
            f" status = CASE WHEN status IN {_PENDING} THEN 'sent' ELSE status END,"
            f" wamid = $3, lease_owner = NULL, lease_until = NULL WHERE {without_wamid}",
            message_id,
            at,
            wamid,
        )
        return changed > 0

    async def state(self, message_id: str) -> OutboxState | None:
        row = await self._db.one(
            "SELECT attempts, ambiguous_attempts, last_error, next_attempt_at, priority,"
            " idempotency_key, callback_url, template_wait, deferrals FROM messages"
            " WHERE id = $1",
            message_id,
        )
        if row is None:
            return None
        return OutboxState(
            attempts=row["attempts"],
            ambiguous_attempts=row["ambiguous_attempts"],
            last_error=row["last_error"],
            next_attempt_at=row["next_attempt_at"],
            priority=row["priority"],
            idempotency_key=row["idempotency_key"],
            callback_url=row["callback_url"],
            waits_for_template=row["template_wait"],
            deferrals=row["deferrals"],
        )

    async def report(self, where: MessageFilter) -> list[ReportRow]:
        condition, params = _outbound_sql(where)
        if where.after_id is not None:
            params.append(where.after_id)
            condition += f" AND m.id > ${len(params)}"
        params.append(where.limit)
        rows = await self._db.all(
            "SELECT m.id, coalesce(m.recipient, c.wa_id, c.user_id) AS recipient, m.channel,"
            " m.template, m.status, m.failure_code, m.failure_reason, m.attempts,"
            " m.ambiguous_attempts, m.wamid, m.created_at, m.updated_at, m.held_until"
            " FROM messages m JOIN contacts c ON c.id = m.contact_id"
            f" WHERE {condition} ORDER BY m.id LIMIT ${len(params)}",
            *params,
        )
        return [_report_row(row) for row in rows]

    async def failure_summary(self, where: MessageFilter) -> list[FailureCount]:
        condition, params = _outbound_sql(where)
        rows = await self._db.all(
            "SELECT m.failure_code AS code, min(m.failure_reason) AS reason, count(*) AS n"
            f" FROM messages m WHERE {condition} AND m.failure_code IS NOT NULL"
            " GROUP BY m.failure_code ORDER BY n DESC, m.failure_code",
            *params,
        )
        return [FailureCount(row["code"], row["reason"] or "", int(row["n"])) for row in rows]

    async def report_counts(self, where: MessageFilter) -> dict[str, int]:
        condition, params = _outbound_sql(where)
        rows = await self._db.all(
            "SELECT m.status, count(*) AS n,"
            " count(*) FILTER (WHERE m.ambiguous_attempts > 0) AS ambiguous"
            f" FROM messages m WHERE {condition} GROUP BY m.status",
            *params,
        )
        counts = {row["status"]: int(row["n"]) for row in rows}
        counts["ambiguous"] = sum(int(row["ambiguous"]) for row in rows)
        return counts


def _report_row(row: Mapping[str, Any]) -> ReportRow:
    return ReportRow(
        id=row["id"],
        to=row["recipient"],
        channel=Channel(row["channel"]) if row["channel"] else None,
        template=TemplateRef.model_validate(row["template"]) if row["template"] else None,
        status=MessageStatus(row["status"]),
        failure=failure_of(row["failure_code"], row["failure_reason"]),
        attempts=row["attempts"],
        ambiguous_attempts=row["ambiguous_attempts"],
        wamid=row["wamid"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        held_until=row["held_until"],
    )

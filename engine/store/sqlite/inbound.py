from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime

from engine.models.conversation import Conversation, Owner
from engine.models.customer_input import CustomerInput
from engine.models.message import Direction, Failure, Message, MessageStatus, StatusChange
from engine.store.announcements import Topic
from engine.store.inbound import Delivery, Handoff, InboundRepo, Outcome, UnmatchedStatus
from engine.store.sqlite.contacts import contact_from_row
from engine.store.sqlite.db import Db, from_db, from_db_opt, json_or_none, to_db

# One read for a whole batch of hand-offs: the message, its contact and conversation.
_DELIVERIES = """
    SELECT h.message_id, h.contact_id, h.new_contact, h.input, h.attempts,
        m.kind, m.text, m.payload, m.status, m.wamid, m.created_at, m.updated_at,
        c.wa_id AS contact_wa_id, c.user_id AS contact_user_id, c.name AS contact_name,
        c.marketing_opt_in AS contact_marketing_opt_in, c.attributes AS contact_attributes,
        c.created_at AS contact_created_at, c.updated_at AS contact_updated_at,
        (SELECT json_group_array(tag) FROM (SELECT tag FROM contact_tags t
            WHERE t.contact_id = c.id ORDER BY tag)) AS contact_tags,
        v.owner, v.agent, v.last_inbound_at
    FROM inbound_handoffs h
    JOIN messages m ON m.id = h.message_id
    JOIN contacts c ON c.id = h.contact_id
    LEFT JOIN conversations v ON v.contact_id = h.contact_id
    WHERE h.handled_at IS NULL {condition}
    ORDER BY h.message_id {limit}
"""
_PENDING = """
    SELECT h.message_id, h.contact_id, h.new_contact, h.attempts
    FROM inbound_handoffs h
    WHERE h.handled_at IS NULL {exclude}
    ORDER BY h.message_id
    LIMIT ?
"""


def _handoff(row: sqlite3.Row) -> Handoff:
    return Handoff(
        message_id=row["message_id"],
        contact_id=row["contact_id"],
        new_contact=bool(row["new_contact"]),
        attempts=row["attempts"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        handled_at=from_db_opt(row["handled_at"]),
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    created_at = from_db(row["created_at"])
    status = MessageStatus(row["status"])
    contact = contact_from_row(row, prefix="contact_")
    return Delivery(
        handoff=Handoff(
            message_id=row["message_id"],
            contact_id=row["contact_id"],
            new_contact=bool(row["new_contact"]),
            attempts=row["attempts"],
        ),
        message=Message(
            id=row["message_id"],
            direction=Direction.INBOUND,
            channel=None,
            contact_id=row["contact_id"],
            contact=contact.address,
            kind=row["kind"],
            text=row["text"],
            template=None,
            payload=json.loads(row["payload"]) if row["payload"] else None,
            status=status,
            failure=None,
            # An inbound message has one status, the one it was stored with.
            history=(StatusChange(status=status, at=created_at, failure=None),),
            wamid=row["wamid"],
            created_at=created_at,
            updated_at=from_db(row["updated_at"]),
        ),
        contact=contact,
        conversation=Conversation(
            contact_id=row["contact_id"],
            owner=Owner(row["owner"] or Owner.BOT),
            agent=row["agent"],
            last_inbound_at=from_db_opt(row["last_inbound_at"]),
        ),
        input=CustomerInput.model_validate_json(row["input"]),
    )


def _not_in(contacts: list[int]) -> str:
    return f"AND h.contact_id NOT IN ({','.join('?' * len(contacts))})" if contacts else ""


class SqliteInboundRepo(InboundRepo):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add_handoff(
        self,
        message_id: str,
        contact_id: int,
        said: CustomerInput,
        *,
        new_contact: bool,
        handled: tuple[Outcome, datetime] | None = None,
    ) -> None:
        outcome, at = handled if handled else (None, None)
        if handled is None:
            self._db.announce(Topic.INBOUND)
        await self._db.all(
            "INSERT INTO inbound_handoffs (message_id, contact_id, new_contact, input, outcome,"
            " handled_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                message_id,
                contact_id,
                int(new_contact),
                said.model_dump_json(exclude_defaults=True),
                outcome.value if outcome else None,
                to_db(at) if at else None,
            ),
        )

    async def get_handoff(self, message_id: str) -> Handoff | None:
        row = await self._db.one(
            "SELECT * FROM inbound_handoffs WHERE message_id = ?", (message_id,)
        )
        return None if row is None else _handoff(row)

    async def deliveries(self, *, exclude: Collection[int], limit: int) -> list[Delivery]:
        skip = list(exclude)
        sql = _DELIVERIES.format(condition=_not_in(skip), limit="LIMIT ?")
        rows = await self._db.all(sql, (*skip, limit))
        return [_delivery(row) for row in rows]

    async def pending(self, *, exclude: Collection[int], limit: int) -> list[Handoff]:
        skip = list(exclude)
        rows = await self._db.all(_PENDING.format(exclude=_not_in(skip)), (*skip, limit))
        return [
            Handoff(
                message_id=row["message_id"],
                contact_id=row["contact_id"],
                new_contact=bool(row["new_contact"]),
                attempts=row["attempts"],
            )
            for row in rows
        ]

    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        exclude: Collection[int],
        limit: int,
    ) -> list[Handoff]:
        skip = list(exclude)
        moment = to_db(now)
        # The writer runs one job at a time, so the select and the update are atomic here;
        # PostgreSQL locks the heads with FOR UPDATE SKIP LOCKED instead.
        rows = await self._db.all(
            "UPDATE inbound_handoffs SET lease_owner = ?, lease_until = ?"
            " WHERE message_id IN (SELECT h.message_id FROM inbound_handoffs h"
            " WHERE h.handled_at IS NULL"
            " AND (h.lease_until IS NULL OR h.lease_until <= ? OR h.lease_owner = ?)"
            " AND NOT EXISTS (SELECT 1 FROM inbound_handoffs e WHERE e.contact_id = h.contact_id"
            " AND e.handled_at IS NULL AND e.message_id < h.message_id)"
            f" {_not_in(skip)} ORDER BY h.message_id LIMIT ?)"
            " RETURNING message_id, contact_id, new_contact, attempts,"
            " (SELECT p.lease_owner FROM inbound_handoffs p"
            " WHERE p.contact_id = inbound_handoffs.contact_id"
            " AND p.message_id < inbound_handoffs.message_id"
            " ORDER BY p.message_id DESC LIMIT 1) AS previous_owner",
            (owner, to_db(lease_until), moment, owner, *skip, limit),
        )
        handoffs = [
            Handoff(
                message_id=row["message_id"],
                contact_id=row["contact_id"],
                new_contact=bool(row["new_contact"]),
                attempts=row["attempts"],
                previous_owner=row["previous_owner"],
            )
            for row in rows
        ]
        return sorted(handoffs, key=lambda h: h.message_id)

    async def release(self, owner: str, message_ids: Collection[str]) -> None:
        await self._db.run(
            "UPDATE inbound_handoffs SET lease_owner = NULL, lease_until = NULL"
            " WHERE lease_owner = ? AND handled_at IS NULL"
            " AND message_id IN (SELECT value FROM json_each(?))",
            (owner, json.dumps(list(message_ids))),
        )

    async def deliveries_of(self, message_ids: Collection[str]) -> list[Delivery]:
        ids = list(message_ids)
        if not ids:
            return []
        condition = f"AND h.message_id IN ({','.join('?' * len(ids))})"
        rows = await self._db.all(_DELIVERIES.format(condition=condition, limit=""), ids)
        return [_delivery(row) for row in rows]

    async def count_waiting(self) -> int:
        row = await self._db.one(
            "SELECT count(*) AS n FROM inbound_handoffs WHERE handled_at IS NULL"
        )
        return int(row["n"]) if row else 0

    async def count_by_outcome(self) -> dict[Outcome | None, int]:
        rows = await self._db.all(
            "SELECT outcome, count(*) AS n FROM inbound_handoffs GROUP BY outcome"
        )
        return {Outcome(row["outcome"]) if row["outcome"] else None: row["n"] for row in rows}

    async def mark_handled(self, handled: Sequence[tuple[str, Outcome]], at: datetime) -> None:
        moment = to_db(at)
        await self._db.many(
            "UPDATE inbound_handoffs SET outcome = ?, handled_at = ?"
            " WHERE message_id = ? AND handled_at IS NULL",
            [(outcome.value, moment, message_id) for message_id, outcome in handled],
        )

    async def count_attempt(self, message_id: str) -> int:
        row = await self._db.one(
            "UPDATE inbound_handoffs SET attempts = attempts + 1 WHERE message_id = ?"
            " RETURNING attempts",
            (message_id,),
        )
        return int(row["attempts"]) if row else 0

    async def keep_unmatched_status(self, status: UnmatchedStatus) -> None:
        failure = status.failure
        await self._db.run(
            "INSERT INTO unmatched_statuses (wamid, status, at, failure_code, failure_reason,"
            " details, consent_applied, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                status.wamid,
                status.status.value,
                to_db(status.at),
                failure.code if failure else None,
                failure.reason if failure else None,
                json_or_none(status.details),
                int(status.consent_applied),
                to_db(status.received_at),
            ),
        )

    async def take_unmatched_statuses(self, *wamids: str) -> list[UnmatchedStatus]:
        # All the wamids as one JSON parameter: one statement for a whole sent batch.
        rows = await self._db.all(
            "DELETE FROM unmatched_statuses"
            " WHERE wamid IN (SELECT value FROM json_each(?)) RETURNING *",
            (json.dumps(wamids),),
        )
        return [
            UnmatchedStatus(
                wamid=row["wamid"],
                status=MessageStatus(row["status"]),
                at=from_db(row["at"]),
                received_at=from_db(row["received_at"]),
                failure=Failure(code=row["failure_code"], reason=row["failure_reason"] or "")
                if row["failure_code"]
                else None,
                details=json.loads(row["details"]) if row["details"] else None,
                consent_applied=bool(row["consent_applied"]),
            )
            for row in sorted(rows, key=lambda row: int(row["id"]))
        ]

    async def prune_unmatched_statuses(self, received_before: datetime) -> int:
        return await self._db.run(
            "DELETE FROM unmatched_statuses WHERE received_at < ?", (to_db(received_before),)
        )

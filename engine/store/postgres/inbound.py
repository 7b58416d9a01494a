from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.models.conversation import Conversation, Owner
from engine.models.customer_input import CustomerInput
from engine.models.message import Direction, Failure, Message, MessageStatus, StatusChange
from engine.store.announcements import Topic
from engine.store.inbound import Delivery, Handoff, InboundRepo, Outcome, UnmatchedStatus
from engine.store.postgres.contacts import contact_from_row
from engine.store.postgres.db import PgDb

# One read for a whole batch of hand-offs: the message, its contact and conversation.
_DELIVERIES = """
    SELECT h.message_id, h.contact_id, h.new_contact, h.input, h.attempts,
        m.kind, m.text, m.payload, m.status, m.wamid, m.created_at, m.updated_at,
        c.wa_id AS contact_wa_id, c.user_id AS contact_user_id, c.name AS contact_name,
        c.marketing_opt_in AS contact_marketing_opt_in, c.attributes AS contact_attributes,
        c.created_at AS contact_created_at, c.updated_at AS contact_updated_at,
        (SELECT coalesce(array_agg(t.tag ORDER BY t.tag), '{{}}'::text[])
           FROM contact_tags t WHERE t.contact_id = c.id) AS contact_tags,
        v.owner, v.agent, v.last_inbound_at
    FROM inbound_handoffs h
    JOIN messages m ON m.id = h.message_id
    JOIN contacts c ON c.id = h.contact_id
    LEFT JOIN conversations v ON v.contact_id = h.contact_id
    WHERE h.handled_at IS NULL AND {condition}
    ORDER BY h.message_id {limit}
"""


def _handoff(row: Mapping[str, Any]) -> Handoff:
    return Handoff(
        message_id=row["message_id"],
        contact_id=row["contact_id"],
        new_contact=row["new_contact"],
        attempts=row["attempts"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        handled_at=row["handled_at"],
    )


def _delivery(row: Mapping[str, Any]) -> Delivery:
    created_at: datetime = row["created_at"]
    status = MessageStatus(row["status"])
    contact = contact_from_row(row, prefix="contact_")
    return Delivery(
        handoff=Handoff(
            message_id=row["message_id"],
            contact_id=row["contact_id"],
            new_contact=row["new_contact"],
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
            payload=row["payload"],
            status=status,
            failure=None,
            # An inbound message has one status, the one it was stored with.
            history=(StatusChange(status=status, at=created_at, failure=None),),
            wamid=row["wamid"],
            created_at=created_at,
            updated_at=row["updated_at"],
        ),
        contact=contact,
        conversation=Conversation(
            contact_id=row["contact_id"],
            owner=Owner(row["owner"] or Owner.BOT),
            agent=row["agent"],
            last_inbound_at=row["last_inbound_at"],
        ),
        input=CustomerInput.model_validate(row["input"]),
    )


class PgInboundRepo(InboundRepo):
    def __init__(self, db: PgDb) -> None:
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
        await self._db.run(
            "INSERT INTO inbound_handoffs (message_id, contact_id, new_contact, input, outcome,"
            " handled_at) VALUES ($1, $2, $3, $4, $5, $6)",
            message_id,
            contact_id,
            new_contact,
            said.model_dump(mode="json", exclude_defaults=True),
            outcome.value if outcome else None,
            at,
        )

    async def get_handoff(self, message_id: str) -> Handoff | None:
        row = await self._db.one(
            "SELECT message_id, contact_id, new_contact, attempts, outcome, handled_at"
            " FROM inbound_handoffs WHERE message_id = $1",
            message_id,
        )
        return None if row is None else _handoff(row)

    async def deliveries(self, *, exclude: Collection[int], limit: int) -> list[Delivery]:
        sql = _DELIVERIES.format(condition="h.contact_id <> ALL($1::bigint[])", limit="LIMIT $2")
        rows = await self._db.all(sql, list(exclude), limit)
        return [_delivery(row) for row in rows]

    async def pending(self, *, exclude: Collection[int], limit: int) -> list[Handoff]:
        rows = await self._db.all(
            "SELECT h.message_id, h.contact_id, h.new_contact, h.attempts"
            " FROM inbound_handoffs h"
            " WHERE h.handled_at IS NULL AND h.contact_id <> ALL($1::bigint[])"
            " ORDER BY h.message_id LIMIT $2",
            list(exclude),
            limit,
        )
        return [
            Handoff(
                message_id=row["message_id"],
                contact_id=row["contact_id"],
                new_contact=row["new_contact"],
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
        # Only a contact's head is ever leased, so two dispatchers never hold hand-offs
        # of one contact. Writes are SERIALIZABLE: a head that another transaction leased
        # or handled since this one's snapshot is locked (skipped) or fails to serialize
        # (the job runs again on a fresh snapshot); a head handled since that snapshot
        # makes the next one the head only for a later snapshot. Under READ COMMITTED
        # FOR UPDATE would re-check the row alone, not whether it is still the head.
        rows = await self._db.all(
            "WITH heads AS (SELECT h.message_id FROM inbound_handoffs h"
            " WHERE h.handled_at IS NULL"
            " AND (h.lease_until IS NULL OR h.lease_until <= $3 OR h.lease_owner = $1)"
            " AND NOT EXISTS (SELECT 1 FROM inbound_handoffs e WHERE e.contact_id = h.contact_id"
            " AND e.handled_at IS NULL AND e.message_id < h.message_id)"
            " AND h.contact_id <> ALL($4::bigint[])"
            " ORDER BY h.message_id LIMIT $5 FOR UPDATE SKIP LOCKED)"
            " UPDATE inbound_handoffs SET lease_owner = $1, lease_until = $2"
            " FROM heads WHERE inbound_handoffs.message_id = heads.message_id"
            " RETURNING inbound_handoffs.message_id, inbound_handoffs.contact_id,"
            " inbound_handoffs.new_contact, inbound_handoffs.attempts,"
            " (SELECT p.lease_owner FROM inbound_handoffs p"
            " WHERE p.contact_id = inbound_handoffs.contact_id"
            " AND p.message_id < inbound_handoffs.message_id"
            " ORDER BY p.message_id DESC LIMIT 1) AS previous_owner",
            owner,
            lease_until,
            now,
            list(exclude),
            limit,
        )
        handoffs = [
            Handoff(
                message_id=row["message_id"],
                contact_id=row["contact_id"],
                new_contact=row["new_contact"],
                attempts=row["attempts"],
                previous_owner=row["previous_owner"],
            )
            for row in rows
        ]
        return sorted(handoffs, key=lambda h: h.message_id)

    async def release(self, owner: str, message_ids: Collection[str]) -> None:
        await self._db.run(
            "UPDATE inbound_handoffs SET lease_owner = NULL, lease_until = NULL"
            " WHERE lease_owner = $1 AND handled_at IS NULL AND message_id = ANY($2::text[])",
            owner,
            list(message_ids),
        )

    async def deliveries_of(self, message_ids: Collection[str]) -> list[Delivery]:
        ids = list(message_ids)
        if not ids:
            return []
        sql = _DELIVERIES.format(condition="h.message_id = ANY($1::text[])", limit="")
        rows = await self._db.all(sql, ids)
        return [_delivery(row) for row in rows]

    async def count_waiting(self) -> int:
        waiting: int = await self._db.val(
            "SELECT count(*) FROM inbound_handoffs WHERE handled_at IS NULL"
        )
        return waiting

    async def count_by_outcome(self) -> dict[Outcome | None, int]:
        rows = await self._db.all(
            "SELECT outcome, count(*) AS n FROM inbound_handoffs GROUP BY outcome"
        )
        return {Outcome(row["outcome"]) if row["outcome"] else None: row["n"] for row in rows}

    async def mark_handled(self, handled: Sequence[tuple[str, Outcome]], at: datetime) -> None:
        if not handled:
            return
        # handled_at IS NULL: a hand-off closes once, whoever closes it first.
        await self._db.many(
            "UPDATE inbound_handoffs SET outcome = $1, handled_at = $2"
            " WHERE message_id = $3 AND handled_at IS NULL",
            [(outcome.value, at, message_id) for message_id, outcome in handled],
        )

    async def count_attempt(self, message_id: str) -> int:
        attempts: int | None = await self._db.val(
            "UPDATE inbound_handoffs SET attempts = attempts + 1 WHERE message_id = $1"
            " RETURNING attempts",
            message_id,
        )
        return 0 if attempts is None else attempts

    async def keep_unmatched_status(self, status: UnmatchedStatus) -> None:
        failure = status.failure
        await self._db.run(
            "INSERT INTO unmatched_statuses (wamid, status, at, failure_code, failure_reason,"
            " details, consent_applied, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            status.wamid,
            status.status.value,
            status.at,
            failure.code if failure else None,
            failure.reason if failure else None,
            status.details,
            status.consent_applied,
            status.received_at,
        )

    async def take_unmatched_statuses(self, *wamids: str) -> list[UnmatchedStatus]:
        rows = await self._db.all(
            "DELETE FROM unmatched_statuses WHERE wamid = ANY($1::text[])"
            " RETURNING id, wamid, status, at, failure_code, failure_reason, details,"
            " consent_applied, received_at",
            list(wamids),
        )
        return [
            UnmatchedStatus(
                wamid=row["wamid"],
                status=MessageStatus(row["status"]),
                at=row["at"],
                received_at=row["received_at"],
                failure=Failure(code=row["failure_code"], reason=row["failure_reason"] or "")
                if row["failure_code"]
                else None,
                details=row["details"],
                consent_applied=row["consent_applied"],
            )
            for row in sorted(rows, key=lambda row: int(row["id"]))
        ]

    async def prune_unmatched_statuses(self, received_before: datetime) -> int:
        return await self._db.run(
            "DELETE FROM unmatched_statuses WHERE received_at < $1", received_before
        )

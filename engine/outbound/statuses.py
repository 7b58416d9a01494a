"""Delivery statuses: what became of the messages we sent.

A status moves its outbound message forward (``tx.messages.change_status`` keeps the
whole history and never moves a message backwards: ``delivered`` after ``read`` is
recorded, and the message stays ``read``). A status whose wamid no message carries
yet is kept as *unmatched*; the sender calls :func:`replay_unmatched_statuses_of` in the
transaction that records the wamid, so no status is lost to that race.

A status changes only a message we sent: one whose id names a customer's message (a
mistaken or forged notification) is ignored and counted, so it can neither mark what
the customer wrote ``failed`` nor, with 131050, opt the customer out.

A ``failed`` status with error 131049 (Meta's per-user marketing limit) does not fail
the message at once: it is deferred and sent again later
(:mod:`engine.outbound.marketing_limit`). The ``pricing`` of each status (billable,
pricing model, type, category) is kept on the message for the reports.

A ``failed`` status with error 131050 means the customer stopped marketing messages
from this business in WhatsApp: the contact's opt-in becomes NO (source
``whatsapp_error``) so that later marketing is stopped on our side, before it costs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.models.contact import ConsentSource
from engine.models.message import Direction, Failure, Message, MessageStatus
from engine.outbound.marketing_limit import DEFAULT_MARKETING_LIMIT, MarketingLimitRetry
from engine.outbound.recovery import message_for_status
from engine.store import Tx
from engine.store.contacts import Consent, NewContact
from engine.store.inbound import UnmatchedStatus
from engine.store.messages import Pricing
from engine.whatsapp.send_errors import (
    MARKETING_STOPPED,
    failure_from_status_error,
    limits_marketing,
    stops_marketing,
)
from engine.whatsapp.webhook import StatusUpdate, valid_wa_id

log = logging.getLogger(__name__)

_STATUSES = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.PLAYED,
    "failed": MessageStatus.FAILED,
}
_NOT_DETAILS = frozenset({"id", "status", "timestamp"})


class StatusResult(StrEnum):
    APPLIED = "applied"
    UNMATCHED = "unmatched"  # kept until the sender records its wamid
    IGNORED = "ignored"  # a status value we do not track
    NOT_OUTBOUND = "not_outbound"  # its id names a customer's message, not one we sent


def _failure(update: StatusUpdate) -> Failure:
    if not update.errors:
        return Failure(code="failed", reason="WhatsApp reported the message failed")
    return failure_from_status_error(update.errors[0].model_dump(exclude_none=True))


async def apply_status(
    tx: Tx,
    update: StatusUpdate,
    *,
    now: datetime,
    via: str | None = None,
    marketing_limit: MarketingLimitRetry = DEFAULT_MARKETING_LIMIT,
) -> StatusResult:
    """Apply one status; ``via``: the business number the notification names."""
    status = _STATUSES.get(update.status.lower())
    if status is None:
        log.info("ignored status %r of %s", update.status, update.id)
        return StatusResult.IGNORED
    at = update.timestamp or now
    failure = _failure(update) if status is MessageStatus.FAILED else None
    details: dict[str, Any] | None = {
        key: value for key, value in update.raw.items() if key not in _NOT_DETAILS
    } or None
    # By wamid, or, when the sender never stored one (it stopped during the call), by
    # the message id the send carried in biz_opaque_callback_data.
    message = await message_for_status(tx, update.id, update.biz_opaque_callback_data, at=at)
    if message is not None and message.direction is not Direction.OUTBOUND:
        log.warning("ignored status %r of %s: it names a customer's message", status, update.id)
        return StatusResult.NOT_OUTBOUND

    await _link_recipient(tx, update)
    consent_applied = False
    if any(stops_marketing(error.code) for error in update.errors):
        contact_id = message.contact_id if message else await _recipient(tx, update)
        if contact_id is not None:
            number = await tx.numbers.of_message(message.id) if message else via
            await _marketing_stopped(tx, contact_id, update.id, message, number)
            consent_applied = True

    if message is None:
        await tx.inbound.keep_unmatched_status(
            UnmatchedStatus(
                wamid=update.id,
                status=status,
                at=at,
                received_at=now,
                failure=failure,
                details=details,
                consent_applied=consent_applied,
            )
        )
        return StatusResult.UNMATCHED
    if message.status is MessageStatus.DEFERRED and message.wamid != update.id:
        # A late word on the try Meta held back; the message waits for its next one.
        log.info("ignored status %r of %s: its message was deferred", status, update.id)
        return StatusResult.IGNORED
    if update.pricing is not None:
        await tx.messages.set_pricing(message.id, _pricing(update))
    if failure is not None and any(limits_marketing(error.code) for error in update.errors):
        state = await tx.outbox.state(message.id)
        then = marketing_limit.after(state.deferrals if state else 0, failure, now=at)
        if isinstance(then, Failure):
            failure = then  # the last try: it fails, saying how often it was tried
        elif await tx.outbox.defer(message.id, failure=failure, due_at=then, at=at):
            return StatusResult.APPLIED
    await tx.messages.change_status(message.id, status, at=at, failure=failure, details=details)
    return StatusResult.APPLIED


def _pricing(update: StatusUpdate) -> Pricing:
    pricing = update.pricing
    assert pricing is not None
    return Pricing(pricing.billable, pricing.pricing_model, pricing.type, pricing.category)


async def replay_unmatched_statuses_of(tx: Tx, messages: dict[str, str]) -> None:
    """Apply the statuses that came for each wamid of ``messages`` (wamid → message id)
    before the message carried it: one statement for the batch when, as nearly always,
    no status came early. The sender calls this in the transaction that records the
    wamids."""
    if not messages:
        return
    kept: dict[str, list[UnmatchedStatus]] = {}
    for status in await tx.inbound.take_unmatched_statuses(*messages):
        kept.setdefault(status.wamid, []).append(status)
    for wamid, statuses in kept.items():
        await _replay(tx, messages[wamid], wamid, statuses)


async def _replay(tx: Tx, message_id: str, wamid: str, kept: list[UnmatchedStatus]) -> None:
    message = await tx.messages.get(message_id)
    if message is None:
        raise ValueError(f"no message {message_id} to replay statuses of {wamid} on")
    for status in kept:
        await tx.messages.change_status(
            message_id,
            status.status,
            at=status.at,
            failure=status.failure,
            details=status.details,
        )
        pricing = (status.details or {}).get("pricing")
        if isinstance(pricing, dict):
            await tx.messages.set_pricing(
                message_id,
                Pricing(
                    pricing.get("billable"),
                    pricing.get("pricing_model"),
                    pricing.get("type"),
                    pricing.get("category"),
                ),
            )
        stopped = status.failure is not None and stops_marketing(status.failure.code)
        if stopped and not status.consent_applied:
            await _marketing_stopped(
                tx, message.contact_id, wamid, message, await tx.numbers.of_message(message_id)
            )


async def _link_recipient(tx: Tx, update: StatusUpdate) -> None:
    """A status naming the recipient by number and user id together links the two to
    one contact (merging two contacts they were), as a message naming both does. A
    status never creates a contact."""
    wa_id, user_id = valid_wa_id(update.recipient_id), update.recipient_user_id
    if wa_id is None or user_id is None:
        return
    if await tx.contacts.get(wa_id) is None and await tx.contacts.get(user_id) is None:
        return
    await tx.contacts.get_or_create(
        NewContact(wa_id=wa_id, user_id=user_id, marketing_opt_in=False),
        Consent(ConsentSource.CONTACT_LINK, actor="whatsapp", note=f"status of {update.id}"),
    )


async def _recipient(tx: Tx, update: StatusUpdate) -> int | None:
    for address in (update.recipient_id, update.recipient_user_id):
        if address:
            contact = await tx.contacts.get(address)
            if contact is not None:
                return contact.id
    return None


async def _marketing_stopped(
    tx: Tx, contact_id: int, wamid: str, message: Message | None, number: str | None
) -> None:
    # The evidence is the message that failed: which one, and what it said.
    evidence = {
        "error_code": MARKETING_STOPPED,
        "failed_wamid": wamid,
        "failed_message_id": message.id if message else None,
        "failed_template": message.template.name if message and message.template else None,
        "failed_text": message.text if message else None,
        "business_number": number,
    }
    await tx.contacts.set_opt_in(
        contact_id,
        False,
        Consent(
            ConsentSource.WHATSAPP_ERROR,
            actor="whatsapp",
            note=f"error {MARKETING_STOPPED}: the customer stopped marketing messages "
            f"from this business in WhatsApp (message {wamid}"
            + (f", business number {number})" if number else ")"),
            evidence=evidence,
        ),
    )

"""The marketing limits in force (``MARKETING_QUIET_HOURS``, ``MARKETING_FREQUENCY_CAP``)
and what the send rules need to apply them to one contact now.

The limits are published to the database when a process starts, so every process that
enqueues or sends (web and workers alike) applies the same ones: the last process
started decides, and a worker asks again before each send what the web process asked at
enqueue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.models.contact import Contact
from engine.models.marketing_limits import MarketingLimits, QuietHours
from engine.send_rules import ContentKind, quiet_until
from engine.store import Tx

LIMITS_KEY = "marketing_limits"


async def limits_in_force(tx: Tx) -> MarketingLimits:
    return MarketingLimits.from_json(await tx.settings.get(LIMITS_KEY))


async def publish_limits(tx: Tx, limits: MarketingLimits) -> None:
    await tx.settings.put(LIMITS_KEY, limits.to_json())


@dataclass(frozen=True, slots=True)
class LimitInputs:
    """What :func:`engine.send_rules.decide` is told about the marketing limits."""

    over_cap: bool = False
    quiet_until: datetime | None = None


NOT_LIMITED = LimitInputs()


async def limit_inputs(
    tx: Tx,
    contact: Contact,
    kind: ContentKind,
    limits: MarketingLimits,
    hours: QuietHours | None,
    *,
    now: datetime,
) -> LimitInputs:
    """For a message of ``kind`` to ``contact`` now: whether the cap is reached (what
    was sent on every channel in the period) and when their quiet hours ``hours`` end.
    Only MARKETING templates are limited, so nothing is read for anything else."""
    if kind is not ContentKind.MARKETING:
        return NOT_LIMITED
    cap = limits.frequency_cap
    over_cap = False
    if cap is not None:
        sent = await tx.messages.marketing_sent_count(contact.id, since=now - cap.period)
        over_cap = cap.reached(sent)
    until = quiet_until(
        hours, now, wa_id=contact.wa_id, timezone=contact.attributes.get("timezone")
    )
    return LimitInputs(over_cap, until)

"""Meta's ``phone_number_quality_update`` webhook: the health of a business number.

Its value names the number by its display number (no phone number id)::

    {"field": "phone_number_quality_update",
     "value": {"display_phone_number": "15550783881", "event": "FLAGGED",
               "current_limit": "TIER_10K", "old_limit": "TIER_1K"}}

``event`` is FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, ONBOARDING or THROUGHPUT_UPGRADE;
``current_limit`` the messaging limit tier (also ``max_daily_conversations_per_business``,
which later versions send instead); a ``quality_rating`` (GREEN, YELLOW, RED) is read when
the value carries one. A value that names no display number is left out; a tier or rating
we do not know is ignored (the rest of the update still applies).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.models.number import HealthUpdate, LimitTier, Quality
from engine.whatsapp.webhook import Notification, OtherChange

QUALITY_FIELD = "phone_number_quality_update"

_FLAGGING = {"FLAGGED": True, "UNFLAGGED": False}

E = TypeVar("E", LimitTier, Quality)


@dataclass(frozen=True, slots=True)
class QualityUpdate:
    display_phone_number: str
    event: str | None
    update: HealthUpdate


def _enum(kind: type[E], value: Any) -> E | None:
    if isinstance(value, str):
        try:
            return kind(value.upper())
        except ValueError:
            return None
    return None


def read_quality_update(value: Any) -> QualityUpdate | None:
    """One change's value; None when it names no display number.

    >>> read_quality_update({"display_phone_number": "15550783881", "event": "FLAGGED",
    ...                      "current_limit": "TIER_1K"}).update.flagged
    True
    """
    if not isinstance(value, dict):
        return None
    display = value.get("display_phone_number")
    if not isinstance(display, str | int) or not str(display).strip():
        return None
    event = value.get("event")
    event = event.upper() if isinstance(event, str) else None
    tier = _enum(LimitTier, value.get("current_limit")) or _enum(
        LimitTier, value.get("max_daily_conversations_per_business")
    )
    quality = _enum(Quality, value.get("quality_rating") or value.get("current_quality_rating"))
    return QualityUpdate(
        str(display),
        event,
        HealthUpdate(
            quality_rating=quality,
            messaging_limit_tier=tier,
            flagged=_FLAGGING.get(event or ""),
        ),
    )


def quality_updates(notification: Notification) -> Iterator[QualityUpdate]:
    for entry in notification.entry:
        for change in entry.changes:
            if isinstance(change, OtherChange) and change.field == QUALITY_FIELD:
                update = read_quality_update(change.value)
                if update is not None:
                    yield update

"""Meta's health updates of a business number, applied to the registered number.

The number is found by its display number (Meta's update carries no phone number id);
an update for a number not registered here is logged and ignored. What follows from a
number's health (a MARKETING broadcast on a RED or flagged number pauses; planning keeps
within its daily limit) is the campaigns' (``engine/campaigns/broadcasts.py``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from engine.store import Tx
from engine.whatsapp.number_health import QualityUpdate

log = logging.getLogger(__name__)


async def apply_quality_update(tx: Tx, quality: QualityUpdate, *, now: datetime) -> bool:
    """Update the number's health; False when no registered number has that display number."""
    number = await tx.numbers.by_display(quality.display_phone_number)
    if number is None:
        log.warning(
            "ignored a quality update (%s) for %s: no business number has that display number",
            quality.event,
            quality.display_phone_number,
        )
        return False
    updated = await tx.numbers.update_health(number.phone_number_id, quality.update, at=now)
    if updated is not None and updated.unhealthy:
        log.warning(
            "business number %s: quality %s%s (%s)",
            updated.phone_number_id,
            updated.quality_rating,
            ", flagged" if updated.flagged else "",
            quality.event,
        )
    return True

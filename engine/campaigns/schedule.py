"""When a sequence step may go: its delay, then the send window in the contact's local time.

The contact's time zone is their ``timezone`` attribute when it names one (an IANA name
such as ``Europe/Paris``), else a guess from their number with phonenumbers' time zone
data (the first zone it gives for the number), else UTC.

>>> from datetime import UTC, datetime, time
>>> window = SendWindow(start=time(9), end=time(18))
>>> paris = contact_zone("33612345678", {})
>>> str(paris)
'Europe/Paris'
>>> next_send_time(datetime(2026, 3, 2, 19, 30, tzinfo=UTC), window, paris).isoformat()
'2026-03-03T08:00:00+00:00'
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from engine.models.campaign import SendWindow

TIMEZONE_ATTRIBUTE = "timezone"
"""The contact attribute that overrides the time zone guessed from the number."""

_UNKNOWN_ZONE = "Etc/Unknown"


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def contact_zone(wa_id: str | None, attributes: Mapping[str, Any]) -> ZoneInfo:
    """The contact's time zone (see the module docstring).

    >>> str(contact_zone("16505551234", {}))
    'America/Los_Angeles'
    >>> str(contact_zone("16505551234", {"timezone": "Asia/Tokyo"}))
    'Asia/Tokyo'
    """
    named = attributes.get(TIMEZONE_ATTRIBUTE)
    if isinstance(named, str) and (zone := _zone(named)) is not None:
        return zone
    if wa_id:
        try:
            number = phonenumbers.parse("+" + wa_id)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            for name in number_zones.time_zones_for_number(number):
                if name != _UNKNOWN_ZONE and (zone := _zone(name)) is not None:
                    return zone
    return ZoneInfo("UTC")


def in_window(moment: datetime, window: SendWindow, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone).time().replace(tzinfo=None)
    if window.start < window.end:
        return window.start <= local < window.end
    return local >= window.start or local < window.end  # the window spans midnight


def next_send_time(moment: datetime, window: SendWindow | None, zone: ZoneInfo) -> datetime:
    """``moment`` if it is inside the window, else when the window next opens (UTC)."""
    if window is None or in_window(moment, window, zone):
        return moment
    local = moment.astimezone(zone)
    opens = datetime.combine(local.date(), window.start, tzinfo=zone)
    if opens <= local:
        opens = datetime.combine(local.date() + timedelta(days=1), window.start, tzinfo=zone)
    return opens.astimezone(UTC)

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

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.models.campaign import SendWindow
from engine.models.local_zone import TIMEZONE_ATTRIBUTE, contact_zone

__all__ = ["TIMEZONE_ATTRIBUTE", "contact_zone", "in_window", "next_send_time"]


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

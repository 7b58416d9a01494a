"""The limits on marketing a business sets for itself: quiet hours in the contact's local
time and a frequency cap per contact.

>>> hours = QuietHours.parse("21:00-09:00")
>>> str(hours)
'21:00-09:00'
>>> from zoneinfo import ZoneInfo
>>> hours.end_if_inside(datetime(2026, 3, 2, 23, 30, tzinfo=UTC), ZoneInfo("UTC"))
datetime.datetime(2026, 3, 3, 9, 0, tzinfo=datetime.timezone.utc)
>>> hours.end_if_inside(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), ZoneInfo("UTC")) is None
True
>>> str(FrequencyCap.parse("2/7d")), FrequencyCap.parse("3/12h").period
('2/7d', datetime.timedelta(seconds=43200))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_QUIET_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_FREQUENCY_CAP = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([dh])\s*$")


def _clock_time(hours: str, minutes: str) -> time:
    hour, minute = int(hours), int(minutes)
    if hour > 23 or minute > 59:
        raise ValueError(f"{hours}:{minutes} is not a time of day (00:00 to 23:59)")
    return time(hour, minute)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours in which marketing waits; they may span midnight (``21:00-09:00``)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``HH:MM-HH:MM``; ValueError saying what is wrong."""
        match = _QUIET_HOURS.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not HH:MM-HH:MM (e.g. 21:00-09:00)")
        start = _clock_time(match[1], match[2])
        end = _clock_time(match[3], match[4])
        if start == end:
            raise ValueError(f"{text!r} starts and ends at the same time")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # they span midnight

    def end_if_inside(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet hours around ``moment`` end (UTC), None when it is outside them."""
        local = moment.astimezone(zone)
        if not self.contains(local.time().replace(tzinfo=None)):
            return None
        ends = datetime.combine(local.date(), self.end, tzinfo=zone)
        if ends <= local:
            ends = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return ends.astimezone(UTC)


_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1)}


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``limit`` MARKETING templates per contact in any rolling ``period``."""

    limit: int
    period: timedelta
    text: str

    @classmethod
    def parse(cls, text: str) -> FrequencyCap:
        """``N/<count>d`` or ``N/<count>h`` (``2/7d``); ValueError saying what is wrong."""
        match = _FREQUENCY_CAP.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not N/<days>d or N/<hours>h (e.g. 2/7d)")
        limit, count = int(match[1]), int(match[2])
        if limit < 1 or count < 1:
            raise ValueError(f"{text!r}: the count and the period must be at least 1")
        return cls(limit, count * _UNITS[match[3]], f"{limit}/{count}{match[3]}")

    def __str__(self) -> str:
        return self.text

    def reached(self, sent: int) -> bool:
        """Whether ``sent`` MARKETING templates in the period leave no room for another."""
        return sent >= self.limit


@dataclass(frozen=True, slots=True)
class MarketingLimits:
    """The limits in force (each None when off)."""

    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None

    @classmethod
    def parse(cls, quiet_hours: str, frequency_cap: str) -> MarketingLimits:
        """From the settings' text, where empty means off."""
        return cls(
            QuietHours.parse(quiet_hours) if quiet_hours.strip() else None,
            FrequencyCap.parse(frequency_cap) if frequency_cap.strip() else None,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "quiet_hours": str(self.quiet_hours) if self.quiet_hours else "",
                "frequency_cap": str(self.frequency_cap) if self.frequency_cap else "",
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> MarketingLimits:
        if not text:
            return NO_LIMITS
        stored = json.loads(text)
        return cls.parse(stored.get("quiet_hours", ""), stored.get("frequency_cap", ""))


NO_LIMITS = MarketingLimits()

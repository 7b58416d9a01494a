"""A contact's local time zone: their ``timezone`` attribute when it names one (an IANA
name such as ``Europe/Paris``), else a guess from their number with phonenumbers' time
zone data (the first zone it gives for the number), else UTC. Sequence send windows and
marketing quiet hours both read the contact's local time through it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

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
    if wa_id and wa_id.isdigit():
        try:
            number = phonenumbers.parse("+" + wa_id)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            for name in number_zones.time_zones_for_number(number):
                if name != _UNKNOWN_ZONE and (zone := _zone(name)) is not None:
                    return zone
    return ZoneInfo("UTC")

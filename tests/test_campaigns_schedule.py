"""When a sequence step may go: the send window in the contact's local time."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from engine.campaigns.schedule import contact_zone, in_window, next_send_time
from engine.models.campaign import SendWindow

OFFICE = SendWindow(start=time(9), end=time(17, 30))
NIGHT = SendWindow(start=time(22), end=time(6))
PARIS = ZoneInfo("Europe/Paris")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "window", "expected"),
    [
        ("2026-03-02T10:00", OFFICE, "2026-03-02T10:00"),  # 11:00 in Paris: inside
        ("2026-03-02T05:00", OFFICE, "2026-03-02T08:00"),  # 06:00: later that morning
        ("2026-03-02T16:30", OFFICE, "2026-03-03T08:00"),  # 17:30: the end is outside
        ("2026-03-02T21:30", NIGHT, "2026-03-02T21:30"),  # 22:30: inside, over midnight
        ("2026-03-02T04:00", NIGHT, "2026-03-02T04:00"),  # 05:00: still inside
        ("2026-03-02T06:00", NIGHT, "2026-03-02T21:00"),  # 07:00: tonight at 22:00
        # Paris moves to summer time on 29 March 2026: 09:00 is then 07:00 UTC.
        ("2026-03-28T18:00", OFFICE, "2026-03-29T07:00"),
    ],
)
def test_a_time_outside_the_window_moves_to_its_next_opening(
    moment: str, window: SendWindow, expected: str
) -> None:
    assert next_send_time(utc(moment), window, PARIS) == utc(expected)
    assert in_window(utc(expected), window, PARIS)


def test_without_a_window_any_time_will_do() -> None:
    assert next_send_time(utc("2026-03-02T03:00"), None, PARIS) == utc("2026-03-02T03:00")


@pytest.mark.parametrize(
    ("wa_id", "attributes", "zone"),
    [
        ("16505551234", {}, "America/Los_Angeles"),
        ("12125551234", {}, "America/New_York"),
        ("5511987654321", {}, "America/Sao_Paulo"),
        ("16505551234", {"timezone": "Europe/Paris"}, "Europe/Paris"),
        ("16505551234", {"timezone": "Mars/Olympus"}, "America/Los_Angeles"),  # not a zone
        ("16505551234", {"timezone": 7}, "America/Los_Angeles"),
        ("999123", {}, "UTC"),  # no zone known for the number
        (None, {}, "UTC"),  # known only by a WhatsApp user id
    ],
)
def test_the_zone_comes_from_the_attribute_else_the_number(
    wa_id: str | None, attributes: dict[str, object], zone: str
) -> None:
    assert str(contact_zone(wa_id, attributes)) == zone

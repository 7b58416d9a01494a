"""The server-sent events wire format, as a browser's EventSource reads it."""

from __future__ import annotations

from typing import Any

import pytest

from engine.web.event_stream import comment, frame, retry_after


@pytest.mark.parametrize(
    ("data", "event", "event_id", "wire"),
    [
        ({"a": 1}, None, None, b'data: {"a":1}\n\n'),
        ({}, "resync", None, b"event: resync\ndata: {}\n\n"),
        (
            {"text": "two\nlines"},
            "message",
            7,
            b'id: 7\nevent: message\ndata: {"text":"two\\nlines"}\n\n',
        ),
    ],
)
def test_an_event_is_one_block_of_lines(
    data: Any, event: str | None, event_id: int | None, wire: bytes
) -> None:
    assert frame(data, event=event, event_id=event_id) == wire


def test_a_newline_in_the_data_cannot_end_the_event_early() -> None:
    # JSON escapes it, so a customer's multi-line message stays one event.
    assert frame({"text": "a\n\nb"}).count(b"\n\n") == 1


def test_comments_and_the_retry_hint_carry_no_event() -> None:
    assert comment("keepalive") == b": keepalive\n\n"
    assert retry_after(2000) == b"retry: 2000\n\n"

"""Server-sent events: the response that carries them and how each one is framed.

Both consoles push over this (the desk's changes, the broadcasts' progress), so the
headers that keep proxies from buffering and the wire format live here once.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # proxies pass each event on at once
}


async def open_stream(
    request: web.Request, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """A prepared ``text/event-stream`` response (``headers`` added to the usual ones)."""
    response = web.StreamResponse(headers={**(headers or {}), **HEADERS})
    await response.prepare(request)
    return response


def frame(data: Any, *, event: str | None = None, event_id: int | None = None) -> bytes:
    """One event: ``data`` as compact JSON, with its name and id when given."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str) -> bytes:
    """A line the browser ignores: keeps the connection (and its proxies) awake."""
    return f": {text}\n\n".encode()


def retry_after(milliseconds: int) -> bytes:
    """How long the browser waits before it reconnects a dropped stream."""
    return f"retry: {milliseconds}\n\n".encode()

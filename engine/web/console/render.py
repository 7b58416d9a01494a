"""Rendering console pages: one jinja2 environment, autoescaping everything."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
import phonenumbers
from aiohttp import web

from engine.agents.wire import json_time

TEMPLATES = web.AppKey("console_templates", jinja2.Environment)

# The console's pages run only the console's own script and styles.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def format_phone(address: str | None) -> str:
    """A wa_id the way people read it; a Meta user id stays as it is.

    >>> format_phone("16505551234")
    '+1 650-555-1234'
    >>> format_phone("US.13491208655302741918")
    'US.13491208655302741918'
    """
    if not address or not address.isdigit():
        return address or ""
    try:
        number = phonenumbers.parse("+" + address)
    except phonenumbers.NumberParseException:
        return "+" + address
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def initial(name: str | None) -> str:
    return (name or "?").strip()[:1].upper() or "?"


def tone(key: str | None) -> str:
    """A stable colour class for an avatar (the script computes the same).

    >>> tone("16505551234")
    'tone-1'
    """
    return f"tone-{sum(ord(c) for c in key or '') % 6}"


def clock_time(moment: datetime | None) -> str:
    """A fallback shown before the script puts times in the reader's own zone."""
    return "" if moment is None else moment.strftime("%d %b %H:%M")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engine.web.console", "templates"),
        autoescape=True,  # customer and agent text is shown escaped, everywhere
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["phone"] = format_phone
    env.filters["initial"] = initial
    env.filters["tone"] = tone
    env.filters["iso"] = json_time
    env.filters["clock"] = clock_time
    return env


def page(request: web.Request, *, status: int = 200) -> web.Response:
    """An empty HTML response with the console's headers; fill it with :func:`fill`."""
    return web.Response(status=status, content_type="text/html", headers=SECURITY_HEADERS)


def fill(request: web.Request, response: web.Response, name: str, **context: Any) -> web.Response:
    response.text = request.app[TEMPLATES].get_template(name).render(**context)
    return response


def render(request: web.Request, name: str, *, status: int = 200, **context: Any) -> web.Response:
    return fill(request, page(request, status=status), name, **context)

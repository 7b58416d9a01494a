"""The contact a request's path names (``{contact}``)."""

from __future__ import annotations

from aiohttp import web

from engine.contacts.directory import contact_address as parse_address
from engine.web.keys import SETTINGS


def contact_address(request: web.Request) -> str:
    """The contact named in the path: a phone number in any form, or a Meta user id;
    :class:`engine.contacts.refusals.InvalidAddress` when it is neither."""
    return parse_address(request.match_info["contact"], request.app[SETTINGS].default_region)

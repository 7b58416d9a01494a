"""Who is on the other end of a request, and over what, when a proxy may stand between.

A TLS-terminating proxy (nginx, a load balancer) talks to us over plain HTTP and says in
``X-Forwarded-For`` and ``X-Forwarded-Proto`` who the client is and how they came. Anyone
can send those headers, so they are believed only from a peer in ``TRUSTED_PROXIES``;
from anyone else the peer itself is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from engine.config import IpNetwork
from engine.web.keys import SETTINGS


def _trusted(address: str | None, proxies: Iterable[IpNetwork]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(request: web.Request) -> str | None:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    nearest address in ``X-Forwarded-For`` that is not one of our proxies (those
    further left were written by whoever sent the request, and may be made up)."""
    proxies = request.app[SETTINGS].trusted_proxies
    peer = request.remote
    if not _trusted(peer, proxies):
        return peer
    chain = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(chain):
        if not _trusted(hop, proxies):
            return hop
    return chain[0] if chain else peer


def is_https(request: web.Request) -> bool:
    """Whether the client reached us over TLS: our public URL is https, the request
    came over TLS, or a trusted proxy says the client used https."""
    settings = request.app[SETTINGS]
    if settings.base_url.startswith("https://") or request.secure:
        return True
    if not _trusted(request.remote, settings.trusted_proxies):
        return False
    proto = request.headers.get("X-Forwarded-Proto", "")
    return proto.split(",")[0].strip().lower() == "https"

"""The marketers' side of the console: broadcasts, sequences, contacts and reports,
behind the same sign-in, sessions and CSRF tokens as the agents' side
(:mod:`engine.web.console.auth`), for the ``marketer`` and ``admin`` roles
(:mod:`engine.web.console.marketing.access`)."""

from __future__ import annotations

from aiohttp import web

from engine.web.console.marketing import broadcasts, contacts, live, reports, sequences


def setup_marketing(app: web.Application) -> None:
    # The live stream's routes go first: /broadcasts/{id} must not swallow them.
    for module in (live, broadcasts, sequences, contacts, reports):
        app.add_routes(module.routes)
    live.setup_live(app)


__all__ = ["setup_marketing"]

"""The agents' console at ``/console``: server-rendered pages (jinja2, autoescaped),
a small plain script for live updates and the compose box, no build step.

:func:`setup_console` adds its routes and static files; :func:`console_middleware`
(in the application's middleware list) signs agents in and checks CSRF tokens.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from engine.web.console import desk_work, media, pages
from engine.web.console.marketing import setup_marketing
from engine.web.console.middleware import console_middleware
from engine.web.console.render import TEMPLATES, environment

STATIC_DIR = Path(__file__).parent / "static"


def setup_console(app: web.Application) -> None:
    app[TEMPLATES] = environment()
    app.add_routes(pages.routes)
    setup_marketing(app)
    app.add_routes(desk_work.routes)
    app.add_routes(media.routes)
    app.router.add_static("/console/static", STATIC_DIR, name="console-static")


__all__ = ["console_middleware", "setup_console"]

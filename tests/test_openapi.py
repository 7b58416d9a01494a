"""openapi.yaml describes exactly the routes the server answers."""

from __future__ import annotations

import re

import yaml
from aiohttp import web

from tests.conftest import ROOT

_METHODS = {"get", "post", "put", "patch", "delete"}


def served(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        path = route.resource.canonical
        if path.startswith(("/api/", "/webhook", "/healthz", "/metrics")):
            routes.add((route.method.lower(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return routes


def documented() -> set[tuple[str, str]]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in _METHODS
    }


def test_openapi_lists_every_route_and_no_other(app: web.Application) -> None:
    assert served(app) == documented()

"""openapi.yaml describes exactly the routes the server answers, and every answer the
REST API gives to a request it refuses."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import web

from tests.conftest import ROOT

_METHODS = {"get", "post", "put", "patch", "delete"}
NOT_IN_SPEC = ("/console", "/simulator")
"""Served but not the REST API: the agents' console (browser pages and their
session-authenticated scripts) and the Cloud API simulator (it stands in for Meta)."""
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())


def served(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)
        routes.add((route.method.lower(), path))
    return routes


def documented() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in _METHODS
    }


def operations() -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """(method, path, operation, parameters) of every REST operation."""
    found = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in _METHODS and path.startswith("/api/"):
                parameters = item.get("parameters", []) + operation.get("parameters", [])
                found.append((method, path, operation, parameters))
    return found


def test_openapi_lists_every_route_and_no_other(app: web.Application) -> None:
    routes = served(app)
    elsewhere = {route for route in routes if route[1].startswith(NOT_IN_SPEC)}
    assert routes - elsewhere == documented()
    assert all(not path.startswith("/api/") for _, path in elsewhere)


def _statuses(operation: dict[str, Any]) -> set[int]:
    return {int(code) for code in operation["responses"]}


@pytest.mark.parametrize(
    ("method", "path", "operation", "parameters"),
    operations(),
    ids=[f"{method} {path}" for method, path, _, _ in operations()],
)
def test_every_refusal_the_server_gives_is_listed(
    method: str, path: str, operation: dict[str, Any], parameters: list[dict[str, Any]]
) -> None:
    """401 and 503 (with Retry-After) anywhere under /api; 400, 413 and 422 wherever a
    body is read; 422 wherever a path or query parameter is checked."""
    expected = {401, 503}
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        expected |= {400, 413, 422}
    if "text/csv" in content:
        expected |= {413, 422}
    checked = [
        p for p in parameters if p.get("in") == "query" or p.get("$ref", "").endswith("/Contact")
    ]
    if checked:
        expected.add(422)
    assert expected <= _statuses(operation)
    assert operation["responses"]["503"] == {"$ref": "#/components/responses/Unavailable"}


def test_the_busy_answer_documents_retry_after() -> None:
    assert "Retry-After" in SPEC["components"]["responses"]["Unavailable"]["headers"]


def _body_validator(method: str, path: str) -> jsonschema.Draft202012Validator:
    schema = SPEC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": SPEC["components"]})


def test_a_real_broadcast_body_validates_and_the_preview_stays_closed() -> None:
    template = {"name": "spring_sale", "language": "en_US", "params": ["Ann", "20%"]}
    audience = {"template": template, "tags": ["vip"], "opted_in_only": True}
    create = _body_validator("post", "/api/v1/broadcasts")
    preview = _body_validator("post", "/api/v1/broadcasts/preview")
    create.validate({**audience, "name": "Spring", "send_at": "2026-03-02T09:00:00Z"})
    preview.validate(audience)
    assert not create.is_valid(audience), "a broadcast needs a name"
    assert not create.is_valid({**audience, "name": "Spring", "colour": "red"})
    assert not preview.is_valid({**audience, "name": "Spring"})

"""Property runs of the REST API against the real app on loopback: requests generated
from openapi.yaml for every operation (valid ones, and ones that break the schema in one
place), and junk bodies, must never be answered 5xx, and every answer's status must be
one the spec lists for the operation.

Each run is bounded (``EXAMPLES`` per operation and mode); the whole module stays under
about a minute. ``OPTINFLOW_PROPERTY_EXAMPLES`` raises the count to explore further.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from yarl import URL

from tests.conftest import AUTH, ROOT

pytestmark = [pytest.mark.properties, pytest.mark.timeout(60)]

Client = TestClient[Any, Any]
EXAMPLES = int(os.environ.get("OPTINFLOW_PROPERTY_EXAMPLES", "12"))
SCHEMA = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"))


def _operations() -> list[Any]:
    found = []
    for result in SCHEMA.get_all_operations():
        assert isinstance(result, Ok), f"openapi.yaml does not load: {result}"
        if result.ok().path.startswith("/api/"):
            found.append(result.ok())
    return found


OPERATIONS = _operations()
JSON_BODY_OPERATIONS = [
    op for op in OPERATIONS if any(body.media_type == "application/json" for body in op.body)
]
RUN = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests on every run: CI fails only on a change
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
)
CONTACT = "16505551234"


@dataclass(frozen=True)
class Known:
    """Path parameters that name things the app has, so requests reach past 404s."""

    values: dict[str, str]
    ids: dict[str, str]
    """The ``{id}`` of each collection: a sequence's, a broadcast's, a message's."""

    def of(self, path: str) -> dict[str, str]:
        collection = "/".join(path.split("/")[:4])
        return {**self.values, "id": self.ids.get(collection, "unknown")}

    def fill(self, case: Case[Any]) -> None:
        values = self.of(case.path)
        for name in list(case.path_parameters or {}):
            if name in values:
                case.path_parameters[name] = values[name]


async def seed(client: Client) -> Known:
    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body)
        assert response.status == 201, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    await post("/api/v1/contacts", {"wa_id": CONTACT, "name": "Ann", "tags": ["vip"]})
    template = {"name": "order_update", "language": "en_US", "params": ["A1", "shipped"]}
    sequence = await post(
        "/api/v1/sequences",
        {"name": "welcome", "steps": [{"delay": "1h", "template": template}]},
    )
    broadcast = await post(
        "/api/v1/broadcasts", {"name": "news", "template": template, "tags": ["vip"]}
    )
    response = await client.post("/api/v1/messages", json={"to": CONTACT, "template": template})
    assert response.status == 202, await response.text()
    message = await response.json()
    return Known(
        values={
            "contact": CONTACT,
            "name": "order_update",
            "language": "en_US",
            "shortcut": "hours",
        },
        ids={
            "/api/v1/sequences": sequence["id"],
            "/api/v1/broadcasts": broadcast["id"],
            "/api/v1/messages": message["id"],
        },
    )


def _query(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Query values as a browser would send them (aiohttp refuses bools and None)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            pairs.append((str(name), text))
    return pairs


async def send(client: Client, case: Case[Any]) -> ClientResponse:
    base = str(client.make_url("")).rstrip("/")
    request = case.as_transport_kwargs(base_url=base)
    headers = {
        name: value
        for name, value in request["headers"].items()
        if name.lower() not in {"authorization", "cookie", "accept-encoding"}
    }
    headers.update(AUTH)
    body: dict[str, Any] = {}
    if "json" in request:
        body["data"] = json.dumps(request["json"]).encode()
    elif "data" in request:
        data = request["data"]
        body["data"] = data.encode() if isinstance(data, str) else data
    return await client.session.request(
        request["method"],
        URL(request["url"], encoded=True),
        params=_query(request.get("params")),
        headers=headers,
        **body,
    )


def listed(case: Case[Any]) -> set[int]:
    responses = case.operation.definition.raw.get("responses", {})
    return {int(code) for code in responses if code.isdigit()}


async def check(response: ClientResponse, what: str, allowed: set[int]) -> None:
    text = await response.text()
    assert response.status < 500, f"{what} answered {response.status}: {text[:500]}"
    assert response.status in allowed, (
        f"{what} answered {response.status}, not one of {sorted(allowed)}: {text[:500]}"
    )
    if response.status >= 400 and response.content_type == "application/json":
        error = json.loads(text)["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)


def run_in_thread(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Hypothesis drives its examples synchronously from a worker thread; each request
    runs on the test's loop, where the app serves it."""

    def run(coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    return run


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
async def test_generated_requests_get_a_listed_answer_never_a_5xx(
    client: Client, operation: Any, mode: GenerationMode
) -> None:
    known = await seed(client)
    run = run_in_thread(asyncio.get_running_loop())

    @RUN
    @given(case=operation.as_strategy(generation_mode=mode), use_known=st.booleans())
    def requests_answered(case: Case[Any], use_known: bool) -> None:
        if use_known:
            known.fill(case)

        async def one() -> None:
            response = await send(client, case)
            what = f"{case.method} {case.formatted_path} {case.query!r} {case.body!r:.300}"
            await check(response, what, listed(case))

        run(one())

    await asyncio.to_thread(requests_answered)


def _json_junk() -> st.SearchStrategy[bytes]:
    """Documents Python's json module reads but no request should carry."""
    extreme = st.one_of(
        st.integers(min_value=2**63 - 2, max_value=2**70),
        st.integers(min_value=-(2**70), max_value=-(2**63) + 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
        st.text(max_size=20),
    )
    documents = st.recursive(
        extreme,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    )
    as_json = documents.map(lambda document: json.dumps(document).encode())
    deep = st.integers(min_value=60, max_value=200_000).map(
        lambda depth: b"[" * depth + b"]" * depth
    )
    digits = st.integers(min_value=18, max_value=6000).map(
        lambda count: b'{"wa_id": "1650555", "attributes": {"n": ' + b"9" * count + b"}}"
    )
    return st.one_of(as_json, deep, digits)


JUNK = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    _json_junk(),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"0", b'"text"', b"NaN", b"{"]),
)


@pytest.mark.parametrize("operation", JSON_BODY_OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
async def test_junk_bodies_are_refused_with_a_listed_4xx(client: Client, operation: Any) -> None:
    known = await seed(client)
    run = run_in_thread(asyncio.get_running_loop())
    path = operation.path
    for name, value in known.of(path).items():
        path = path.replace("{" + name + "}", value)
    allowed = {int(code) for code in operation.definition.raw["responses"] if code.isdigit()}

    @RUN
    @given(body=JUNK)
    def junk_answered(body: bytes) -> None:
        async def one() -> None:
            response = await client.request(
                operation.method.upper(),
                path,
                data=body,
                headers={"Content-Type": "application/json"},
            )
            await check(response, f"{operation.method} {path} {body[:300]!r}", allowed)

        run(one())

    await asyncio.to_thread(junk_answered)


QUERY_PARAMETERS = [
    (op, parameter.name)
    for op in OPERATIONS
    for parameter in op.iter_parameters()
    if parameter.location == "query"
]
EDGES = ["9223372036854775808", "-9223372036854775809", "9" * 5000, "1e999", "NaN", "-0", ""]
"""Values just past what a store or a parser holds."""
QUERY_JUNK = st.one_of(
    st.sampled_from(EDGES),
    st.one_of(
        st.integers(min_value=2**63, max_value=2**80),
        st.integers(min_value=-(2**80), max_value=-(2**63) - 1),
    ).map(str),
    st.integers().map(str),
    st.text(max_size=40),
)


@pytest.mark.parametrize(
    ("operation", "name"),
    QUERY_PARAMETERS,
    ids=[f"{o.method} {o.path} {n}" for o, n in QUERY_PARAMETERS],
)
async def test_junk_query_values_are_refused_with_a_listed_4xx(
    client: Client, operation: Any, name: str
) -> None:
    known = await seed(client)
    run = run_in_thread(asyncio.get_running_loop())
    path = operation.path
    for key, value in known.of(path).items():
        path = path.replace("{" + key + "}", value)
    allowed = {int(code) for code in operation.definition.raw["responses"] if code.isdigit()}

    @RUN
    @given(value=QUERY_JUNK)
    def junk_answered(value: str) -> None:
        async def one() -> None:
            response = await client.request(operation.method.upper(), path, params={name: value})
            await check(response, f"{operation.method} {path}?{name}={value[:300]}", allowed)

        run(one())

    await asyncio.to_thread(junk_answered)

"""Bad input to the REST API is a 4xx that names what is wrong and changes nothing,
never a 5xx: JSON the store or an answer cannot hold, numbers past 64 bits in the
query, and the HTTP-level refusals (405 with Allow, 413, empty bodies)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    document = await response.json()
    return document["error"]  # type: ignore[no-any-return]


async def no_contacts(client: Client) -> None:
    listed = await (await client.get("/api/v1/contacts")).json()
    assert listed["contacts"] == [], "a refused request changed nothing"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        (b'{"wa_id": "16505551234", "attributes": ' + b"[" * 65 + b"]" * 65 + b"}", "attributes"),
        (b'{"wa_id": "16505551234", "attributes": {"x": NaN}}', "NaN is not a JSON value"),
        (b'{"wa_id": "16505551234", "attributes": {"x": -Infinity}}', "-Infinity"),
        (b'{"wa_id": "16505551234", "name": "\\ud800"}', "name holds a lone surrogate"),
        (b"", "Expecting value"),
        (b'{"wa_id": "1650555', "Unterminated string"),
        (b"\xff\xfe\xfa", "not valid JSON"),
    ],
    ids=["deep", "deep-field", "nan", "infinity", "surrogate", "empty", "cut", "not-utf8"],
)
async def test_malformed_json_is_400_naming_the_problem(
    client: Client, body: bytes, says: str
) -> None:
    response = await client.post("/api/v1/contacts", data=body, headers=JSON)
    error = await error_of(response, 400)
    assert error["code"] == "malformed_json"
    assert says in error["message"]
    await no_contacts(client)


@pytest.mark.parametrize(
    ("number", "field"),
    [
        ("9" * 5000, "attributes.n"),
        ("-9223372036854775809", "attributes.n"),
        ("9223372036854775808", "attributes.n"),
        ("1e999", "attributes.n"),
        ("-1e999", "attributes.n"),
    ],
    ids=["5000-digits", "below-int64", "above-int64", "float-inf", "float-minus-inf"],
)
async def test_number_out_of_range_is_422_naming_the_field(
    client: Client, number: str, field: str
) -> None:
    body = f'{{"wa_id": "16505551234", "attributes": {{"n": {number}}}}}'
    response = await client.post("/api/v1/contacts", data=body.encode(), headers=JSON)
    error = await error_of(response, 422)
    assert error["code"] == "invalid_request"
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["message"].startswith(f"{field}: ")
    await no_contacts(client)


async def test_numbers_at_the_int64_edges_and_deep_enough_nesting_are_kept(
    client: Client,
) -> None:
    nested: Any = "leaf"
    for _ in range(60):
        nested = [nested]
    attributes = {"low": -(2**63), "high": 2**63 - 1, "tiny": 5e-324, "nested": nested}
    response = await client.post(
        "/api/v1/contacts", json={"wa_id": "16505551234", "attributes": attributes}
    )
    assert response.status == 201, await response.text()
    fetched = await (await client.get("/api/v1/contacts/16505551234")).json()
    assert fetched["attributes"] == attributes


async def test_every_json_route_reads_the_body_the_same_way(client: Client) -> None:
    """The strict reader is the one every JSON body goes through, templates too."""
    for method, path in [
        ("POST", "/api/v1/templates"),
        ("PUT", "/api/v1/templates/x/en"),
        ("POST", "/api/v1/messages"),
        ("POST", "/api/v1/broadcasts"),
        ("POST", "/api/v1/sequences"),
        ("POST", "/api/v1/agents"),
    ]:
        response = await client.request(method, path, data=b"[NaN]", headers=JSON)
        error = await error_of(response, 400)
        assert error["code"] == "malformed_json", (method, path)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/contacts?after=9223372036854775808", "after"),
        ("/api/v1/contacts?after=" + "9" * 5000, "after"),
        ("/api/v1/broadcasts/b1/report?after=99999999999999999999", "after"),
    ],
    ids=["contacts-after-2^63", "contacts-after-5000-digits", "report-after"],
)
async def test_integer_query_parameters_past_64_bits_are_422_naming_them(
    client: Client, path: str, parameter: str
) -> None:
    error = await error_of(await client.get(path), 422)
    assert error["code"] == "invalid_request"
    assert [f["field"] for f in error["fields"]] == [parameter]


async def test_the_largest_id_is_a_page_after_which_nothing_follows(client: Client) -> None:
    response = await client.get("/api/v1/contacts?after=9223372036854775807")
    assert response.status == 200
    assert await response.json() == {"contacts": [], "next_after": None}


async def test_405_keeps_its_allow_header_in_the_json_error(client: Client) -> None:
    response = await client.delete("/api/v1/contacts")
    error = await error_of(response, 405)
    assert error["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}
    assert response.headers["Content-Type"].startswith("application/json")


async def test_a_body_over_the_servers_limit_is_413(client: Client) -> None:
    body = b'{"wa_id": "16505551234", "name": "' + b"a" * (1024 * 1024) + b'"}'
    error = await error_of(await client.post("/api/v1/contacts", data=body, headers=JSON), 413)
    assert error["code"] == "body_too_large"
    await no_contacts(client)


async def test_an_optional_body_over_the_limit_is_413_too(client: Client) -> None:
    response = await client.post(
        "/api/v1/conversations/16505551234/release", data=b" " * (1024 * 1024 + 1), headers=JSON
    )
    assert (await error_of(response, 413))["code"] == "body_too_large"

"""REST contacts and consent, against the real app on loopback."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def create(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/contacts", json=body)
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_create_opt_out_and_read_two_consent_events(client: Client) -> None:
    created = await create(client, wa_id="+1 (650) 555-1234", name="Ann", tags=["vip"])
    assert created["wa_id"] == "16505551234"
    assert created["marketing_opt_in"] is True  # the configured default

    patched = await client.patch(
        "/api/v1/contacts/16505551234", json={"marketing_opt_in": False, "note": "asked by phone"}
    )
    assert patched.status == 200
    assert (await patched.json())["marketing_opt_in"] is False

    history = await (await client.get("/api/v1/contacts/+16505551234/consent")).json()
    assert [(e["marketing_opt_in"], e["source"], e["note"]) for e in history] == [
        (True, "api", None),
        (False, "api", "asked by phone"),
    ]
    fetched = await (await client.get("/api/v1/contacts/16505551234")).json()
    assert fetched["marketing_opt_in"] is False
    assert fetched["tags"] == ["vip"]


async def test_patch_merges_attributes_and_replaces_tags(client: Client) -> None:
    await create(
        client, wa_id="16505551234", attributes={"city": "Lima", "plan": "gold"}, tags=["a"]
    )
    response = await client.patch(
        "/api/v1/contacts/16505551234",
        json={"attributes": {"plan": None, "size": "M"}, "tags": ["b", "c"], "name": "Bea"},
    )
    contact = await response.json()
    assert contact["attributes"] == {"city": "Lima", "size": "M"}
    assert contact["tags"] == ["b", "c"]
    assert contact["name"] == "Bea"
    history = await (await client.get("/api/v1/contacts/16505551234/consent")).json()
    assert len(history) == 1, "no opt-in change, no ledger entry"


async def test_explicit_opt_in_on_creation_is_recorded(client: Client) -> None:
    await create(client, wa_id="16505551234", marketing_opt_in=False)
    history = await (await client.get("/api/v1/contacts/16505551234/consent")).json()
    assert [(e["marketing_opt_in"], e["source"]) for e in history] == [(False, "api")]


async def test_errors_have_the_json_shape_and_change_nothing(client: Client) -> None:
    unknown = await client.post("/api/v1/contacts", json={"wa_id": "16505551234", "colour": "red"})
    assert unknown.status == 422
    error = (await unknown.json())["error"]
    assert error["code"] == "invalid_request"
    assert {"field": "colour", "message": "unknown field"} in error["fields"]

    bad_number = await client.post("/api/v1/contacts", json={"wa_id": "12345"})
    assert bad_number.status == 422
    assert (await bad_number.json())["error"]["fields"][0]["field"] == "wa_id"

    malformed = await client.post(
        "/api/v1/contacts", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status == 400
    assert (await malformed.json())["error"]["code"] == "malformed_json"

    missing = await client.get("/api/v1/contacts/16505551234")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"

    listed = await (await client.get("/api/v1/contacts")).json()
    assert listed["contacts"] == []

    await create(client, wa_id="16505551234")
    duplicate = await client.post("/api/v1/contacts", json={"wa_id": "+16505551234"})
    assert duplicate.status == 409
    assert (await duplicate.json())["error"]["code"] == "contact_exists"

    bad_patch = await client.patch(
        "/api/v1/contacts/16505551234", json={"marketing_opt_in": "maybe"}
    )
    assert bad_patch.status == 422
    contact = await (await client.get("/api/v1/contacts/16505551234")).json()
    assert contact["marketing_opt_in"] is True


async def test_the_api_needs_the_token(client: Client) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic x"},
    ):
        response = await client.get("/api/v1/contacts", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
    refused = await client.post(
        "/api/v1/contacts", json={"wa_id": "16505551234"}, headers={"Authorization": "Bearer no"}
    )
    assert refused.status == 401
    assert (await client.get("/api/v1/contacts/16505551234")).status == 404


async def test_list_pages_through_contacts_by_tag(client: Client) -> None:
    for n in range(5):
        await create(client, wa_id=f"1650555100{n}", tags=["even" if n % 2 == 0 else "odd"])
    first = await (
        await client.get("/api/v1/contacts", params={"tag": "even", "limit": "2"})
    ).json()
    rest = await (
        await client.get(
            "/api/v1/contacts",
            params={"tag": "even", "limit": "2", "after": str(first["next_after"])},
        )
    ).json()
    numbers = [c["wa_id"] for c in first["contacts"] + rest["contacts"]]
    assert numbers == ["16505551000", "16505551002", "16505551004"]
    assert rest["next_after"] is None


async def test_csv_import_reports_bad_rows_by_line_and_imports_the_rest(client: Client) -> None:
    await create(client, wa_id="16505551001", name="Before")
    csv_text = (
        "phone,name,marketing_opt_in,tags\n"
        "+1 650 555 1001,After,no,vip;repeat\n"  # line 2: update, opt out
        "16505551002,New,YES,\n"  # line 3: create
        "not-a-number,Bad,yes,\n"  # line 4: bad number
        "16505551003,Maybe,perhaps,\n"  # line 5: bad opt-in
        "(650) 555-1002,Dup,no,\n"  # line 6: same number as line 3
        "16505551004,,,\n"  # line 7: create with the default opt-in
    )
    response = await client.post(
        "/api/v1/contacts/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status == 200
    result = await response.json()
    assert (result["created"], result["updated"]) == (2, 1)
    assert [e["line"] for e in result["errors"]] == [4, 5, 6]
    assert "marketing_opt_in" in result["errors"][1]["message"]
    assert "line 3" in result["errors"][2]["message"]

    updated = await (await client.get("/api/v1/contacts/16505551001")).json()
    assert (updated["name"], updated["marketing_opt_in"], updated["tags"]) == (
        "After",
        False,
        ["repeat", "vip"],
    )
    assert (await client.get("/api/v1/contacts/16505551003")).status == 404
    ledger = await (await client.get("/api/v1/contacts/16505551001/consent")).json()
    assert [(e["source"], e["marketing_opt_in"]) for e in ledger] == [
        ("api", True),
        ("import", False),
    ]
    default = await (await client.get("/api/v1/contacts/16505551004")).json()
    assert default["marketing_opt_in"] is True


async def test_csv_import_without_a_number_column_is_refused_whole(client: Client) -> None:
    response = await client.post("/api/v1/contacts/import", data=b"name,tags\nAnn,vip\n")
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_csv"
    assert error["errors"] == [
        {"line": 1, "message": "the header needs a wa_id, phone or user_id column"}
    ]
    assert (await (await client.get("/api/v1/contacts")).json())["contacts"] == []

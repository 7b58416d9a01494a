"""REST contacts and consent, against the real app on loopback."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
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


USER_ID = "US.13491208655302741918"


async def test_a_contact_known_by_a_user_id_is_named_by_it_on_every_path(
    client: Client,
) -> None:
    created = await create(client, user_id=USER_ID, name="Pablo")
    assert (created["wa_id"], created["user_id"]) == (None, USER_ID)

    fetched = await (await client.get(f"/api/v1/contacts/{USER_ID}")).json()
    assert fetched["id"] == created["id"]
    patched = await client.patch(f"/api/v1/contacts/{USER_ID}", json={"marketing_opt_in": False})
    assert patched.status == 200
    consent = await (await client.get(f"/api/v1/contacts/{USER_ID}/consent")).json()
    assert [(e["marketing_opt_in"], e["source"]) for e in consent] == [
        (True, "api"),
        (False, "api"),
    ]
    missing = await client.get("/api/v1/contacts/US.1")
    assert missing.status == 404


@pytest.mark.parametrize("bad", ["US.12-3", "us.123", "USA.1", "US.", "1.5"])
async def test_a_malformed_user_id_is_a_422_naming_it_and_changes_nothing(
    client: Client, bad: str
) -> None:
    for response in (
        await client.get(f"/api/v1/contacts/{bad}"),
        await client.patch(f"/api/v1/contacts/{bad}", json={"name": "x"}),
        await client.get(f"/api/v1/contacts/{bad}/consent"),
        await client.post("/api/v1/contacts", json={"user_id": bad}),
    ):
        assert response.status == 422, await response.text()
        fields = (await response.json())["error"]["fields"]
        assert [f["field"] for f in fields] == ["user_id"]
    assert (await (await client.get("/api/v1/contacts")).json())["contacts"] == []


async def test_a_contact_needs_a_number_or_a_user_id(client: Client) -> None:
    response = await client.post("/api/v1/contacts", json={"name": "nobody"})
    assert response.status == 422
    assert "wa_id or a user_id" in (await response.json())["error"]["message"]


async def test_csv_import_takes_user_ids_and_links_them_to_numbers(client: Client) -> None:
    await create(client, wa_id="16505551234", name="Ann", marketing_opt_in=True)
    await create(client, user_id="US.77", marketing_opt_in=False)
    data = (
        "phone,user_id,name,marketing_opt_in,tags\n"
        f",{USER_ID},Pablo,,es\n"  # a user id only: a new contact
        "+1 650 555 1234,US.77,,,\n"  # Ann's number and US.77 are one person
        ",US.12-3,,,\n"  # line 4: not a user id
        ",,Nobody,,\n"  # line 5: neither
        f"+1 650 555 0000,{USER_ID},,,\n"  # line 6: the same user id as line 2
    ).encode()
    response = await client.post(
        "/api/v1/contacts/import", data=data, headers={"Content-Type": "text/csv"}
    )
    assert response.status == 200, await response.text()
    result = await response.json()
    assert (result["created"], result["updated"], result["unchanged"]) == (1, 1, 0)
    assert [(e["line"], e["message"].split(":")[0]) for e in result["errors"]] == [
        (4, "user_id"),
        (5, "phone or user_id"),
        (6, "user_id"),
    ]
    pablo = await (await client.get(f"/api/v1/contacts/{USER_ID}")).json()
    assert (pablo["wa_id"], pablo["name"], pablo["tags"]) == (None, "Pablo", ["es"])
    ann = await (await client.get("/api/v1/contacts/US.77")).json()
    assert (ann["wa_id"], ann["name"]) == ("16505551234", "Ann")
    assert ann["marketing_opt_in"] is False, "one of the two had opted out"
    listed = (await (await client.get("/api/v1/contacts")).json())["contacts"]
    assert len(listed) == 2


async def test_the_export_carries_both_ids_and_imports_again(client: Client) -> None:
    await create(client, wa_id="16505551234", user_id=USER_ID, name="Ann, A.", tags=["a", "b"])
    await create(client, user_id="US.77", marketing_opt_in=False)
    await create(client, wa_id="16505550000")
    response = await client.get("/api/v1/contacts/export", params={"format": "csv"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["wa_id"], r["user_id"], r["marketing_opt_in"]) for r in rows] == [
        ("16505551234", USER_ID, "yes"),
        ("", "US.77", "no"),
        ("16505550000", "", "yes"),
    ]
    assert (rows[0]["name"], rows[0]["tags"]) == ("Ann, A.", "a;b")

    again = await client.post(
        "/api/v1/contacts/import",
        data=(await response.read()),
        headers={"Content-Type": "text/csv"},
    )
    result = await again.json()
    assert (result["created"], result["updated"], result["unchanged"], result["errors"]) == (
        0,
        0,
        3,
        [],
    )

"""REST agent accounts: created with a real KDF, never echoed, errors naming fields."""

from __future__ import annotations

from engine.config import Settings
from tests.databases import first_value
from tests.desk import PASSWORD, Client, add_agent


async def test_create_and_list_agents_without_their_passwords(
    client: Client, settings: Settings
) -> None:
    created = await add_agent(client, "Ann@Example.COM", name="Ann", role="admin")
    assert created["email"] == "ann@example.com"
    assert created["role"] == "admin"
    assert "password" not in created
    assert "password_hash" not in created
    listing = await (await client.get("/api/v1/agents")).json()
    assert [a["email"] for a in listing["agents"]] == ["ann@example.com"]

    stored = first_value(settings.database_url, "SELECT password_hash FROM agents")
    assert isinstance(stored, str)
    assert stored.startswith("scrypt$")
    assert PASSWORD not in stored


async def test_a_second_agent_with_the_same_email_is_a_conflict(client: Client) -> None:
    await add_agent(client, "ann@example.com")
    again = await client.post(
        "/api/v1/agents",
        json={"name": "Other", "email": "ANN@example.com", "password": PASSWORD},
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "agent_exists"


async def test_bad_agent_bodies_name_the_field_and_create_nothing(client: Client) -> None:
    cases = {
        "password": {"name": "A", "email": "a@example.com", "password": "short"},
        "email": {"name": "A", "email": "not-an-email", "password": PASSWORD},
        "role": {"name": "A", "email": "a@example.com", "password": PASSWORD, "role": "boss"},
        "name": {"name": " ", "email": "a@example.com", "password": PASSWORD},
    }
    for field, body in cases.items():
        response = await client.post("/api/v1/agents", json=body)
        assert response.status == 422, field
        fields = [f["field"] for f in (await response.json())["error"]["fields"]]
        assert fields == [field]
    assert (await (await client.get("/api/v1/agents")).json())["agents"] == []


async def test_agents_need_the_api_token(client: Client) -> None:
    response = await client.get("/api/v1/agents", headers={"Authorization": "Bearer wrong"})
    assert response.status == 401

"""Helpers for the agents' tests: agents, contacts, and customer messages as the inbound
side records them (a stored inbound message plus a refreshed 24-hour window)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from engine.ids import new_id
from engine.models import Direction, Message, MessageStatus
from engine.store import Store, Tx
from engine.web.keys import STORE

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery"


def store_of(client: Client) -> Store:
    return client.app[STORE]  # type: ignore[no-any-return]


async def add_agent(
    client: Client, email: str, name: str = "Ann Agent", role: str = "agent"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/agents", json={"name": name, "email": email, "password": PASSWORD, "role": role}
    )
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def add_contact(
    client: Client, wa_id: str, *, opted_in: bool = True, name: str = "Chris Customer"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/contacts", json={"wa_id": wa_id, "name": name, "marketing_opt_in": opted_in}
    )
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def receive(store: Store, wa_id: str, text: str, at: datetime) -> Message:
    """What the webhook stores for a customer's text message."""

    async def job(tx: Tx) -> Message:
        contact = await tx.contacts.get(wa_id)
        assert contact is not None
        message = Message(
            id=new_id(),
            direction=Direction.INBOUND,
            contact_id=contact.id,
            contact=wa_id,
            kind="text",
            text=text,
            status=MessageStatus.RECEIVED,
            wamid=f"wamid.{new_id()}",
            created_at=at,
            updated_at=at,
        )
        await tx.messages.insert(message)
        await tx.conversations.record_inbound(contact.id, at)
        return message

    return await store.write(job)


async def messages_of(store: Store, wa_id: str) -> list[Message]:
    from engine.store.messages import MessageFilter

    async with store.read() as tx:
        contact = await tx.contacts.get(wa_id)
        assert contact is not None
        return await tx.messages.find(MessageFilter(contact_id=contact.id))

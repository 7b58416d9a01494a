"""Shared by the inbound tests: Meta's payload fixtures, a recording handler, waiting."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from engine.inbound.consent_rules import ConsentRules
from engine.inbound.dispatcher import Dispatcher
from engine.inbound.handoff import Incoming
from engine.inbound.ingest import IngestResult, IngestSettings, ingest
from engine.models.contact import ConsentSource, Contact
from engine.models.content import TemplateContent, TextContent
from engine.models.message import Channel, Message, MessageStatus
from engine.models.template import Template, TemplateCategory
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Store, Tx
from engine.store.contacts import Consent, NewContact
from engine.whatsapp.webhook import parse_notification
from tests.conftest import FIXTURES

WEBHOOKS = FIXTURES / "webhooks"
ANN = "16505551234"
STOP_REPLY = "You will no longer receive marketing messages from us."
START_REPLY = "You are subscribed again."
RULES = ConsentRules.build(stop_reply=STOP_REPLY, start_reply=START_REPLY)
NEW_ARRIVALS = Template(
    name="new_arrivals",
    language="en_US",
    category=TemplateCategory.MARKETING,
    body="New arrivals are in, {{1}}! Take a look before they are gone.",
)


def fixture_names() -> list[str]:
    return sorted(path.stem for path in WEBHOOKS.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEBHOOKS / f"{name}.json").read_text())
    return data


def first_message(data: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = data["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


def text_notification(
    body: str, *, wamid: str, sender: str = ANN, sent_at: datetime | None = None
) -> dict[str, Any]:
    """The ``text`` fixture with another body, id and sender (and the time the customer
    sent it: the fixture's own unless given)."""
    data = copy.deepcopy(load("text"))
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    value["messages"][0].update({"id": wamid, "from": sender, "text": {"body": body}})
    if sent_at is not None:
        value["messages"][0]["timestamp"] = str(int(sent_at.timestamp()))
    return data


async def ingest_json(
    store: Store,
    data: dict[str, Any],
    now: datetime,
    *,
    rules: ConsentRules = RULES,
    default_opt_in: bool = True,
) -> IngestResult:
    notification = parse_notification(data)
    settings = IngestSettings(rules=rules, default_opt_in=default_opt_in)
    return await store.write(lambda tx: ingest(tx, notification, settings=settings, now=now))


async def sent_message(
    store: Store,
    now: datetime,
    wamid: str | None,
    *,
    wa_id: str = ANN,
    marketing: bool = True,
    phone_number_id: str | None = None,
) -> Message:
    """An outbound message as the sender leaves it: sent to Meta, wamid recorded (or,
    with ``wamid=None``, handed to Meta and its answer not recorded yet), from
    ``phone_number_id`` (None: the default number)."""

    async def job(tx: Tx) -> Message:
        contact = await tx.contacts.get(wa_id)
        if contact is None:
            contact = await tx.contacts.create(
                NewContact(wa_id=wa_id, marketing_opt_in=True), Consent(ConsentSource.API)
            )
        if await tx.templates.get(NEW_ARRIVALS.name, NEW_ARRIVALS.language) is None:
            await tx.templates.put(NEW_ARRIVALS)
        if not marketing:  # free text: the contact wrote, so the 24-hour window is open
            await tx.conversations.record_inbound(contact.id, now)
        content = (
            TemplateContent(name="new_arrivals", language="en_US", params=("Ann",))
            if marketing
            else TextContent(body="Your order shipped")
        )
        request = OutboundRequest(contact, Channel.API, content, phone_number_id=phone_number_id)
        queued = await enqueue(tx, request, now=now)
        assert queued.message is not None
        await tx.messages.change_status(queued.message.id, MessageStatus.SENDING, at=now)
        if wamid is not None:
            await tx.messages.change_status(
                queued.message.id, MessageStatus.SENT, at=now, wamid=wamid
            )
        found = await tx.messages.get(queued.message.id)
        assert found is not None
        return found

    return await store.write(job)


async def contact_of(store: Store, address: str) -> Contact:
    async with store.read() as tx:
        contact = await tx.contacts.get(address)
    assert contact is not None, f"no contact {address}"
    return contact


class RecordingHandler:
    """A real conversation handler that remembers what it was given."""

    def __init__(self, on_handle: Callable[[Incoming], Awaitable[None]] | None = None) -> None:
        self.seen: list[Incoming] = []
        self._on_handle = on_handle

    async def handle(self, incoming: Incoming) -> None:
        if self._on_handle is not None:
            await self._on_handle(incoming)
        self.seen.append(incoming)

    @property
    def texts(self) -> list[str | None]:
        return [incoming.input.text for incoming in self.seen]


async def settle(dispatcher: Dispatcher, *, within: float = 10.0) -> None:
    """Wait (bounded) until the dispatcher has handed every stored message over."""
    deadline = asyncio.get_running_loop().time() + within
    while not await dispatcher.settled():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the dispatcher did not settle in time")
        await asyncio.sleep(0.005)

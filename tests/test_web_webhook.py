"""The webhook as Meta uses it: the real app on loopback, signed real payloads."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import FrozenClock
from engine.models import ConsentSource, MessageStatus
from engine.models.conversation import Owner
from engine.models.message import Channel, Direction, Message
from engine.store import Store
from engine.store.inbound import Outcome
from engine.store.messages import MessageFilter
from engine.web.keys import BOT_HANDLER, DISPATCHER, STORE
from engine.whatsapp.signature import HEADER, sign
from tests.conftest import AUTH, AiohttpClient, make_app, make_settings
from tests.inbound_support import (
    ANN,
    RecordingHandler,
    contact_of,
    first_message,
    fixture_names,
    load,
    sent_message,
    settle,
    text_notification,
)

Client = TestClient[Any, Any]
SECRET = "test-app-secret"
VERIFY_TOKEN = "verify-me-please"
STOP_REPLY = "Done: no more offers. Reply START to get them again."


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def webhook_app(tmp_path: Path, clock: FrozenClock, handler: RecordingHandler) -> web.Application:
    settings = make_settings(
        tmp_path,
        WA_APP_SECRET=SECRET,
        WA_VERIFY_TOKEN=VERIFY_TOKEN,
        CONSENT_STOP_REPLY=STOP_REPLY,
    )
    app = make_app(settings, clock=clock)
    app[BOT_HANDLER] = handler
    return app


@pytest.fixture
async def meta(aiohttp_client: AiohttpClient, webhook_app: web.Application) -> Client:
    """Meta's side: posts notifications to the real server."""
    return await aiohttp_client(webhook_app)


def store_of(client: Client) -> Store:
    return client.app[STORE]  # type: ignore[no-any-return]


async def post(
    client: Client,
    body: dict[str, Any] | bytes,
    *,
    secret: str | None = SECRET,
    headers: dict[str, str] | None = None,
) -> ClientResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent[HEADER] = sign(raw, secret)
    return await client.post("/webhook", data=raw, headers=sent)


async def accepted(client: Client, body: dict[str, Any]) -> None:
    response = await post(client, body)
    assert response.status == 200, await response.text()
    assert await response.json() == {"status": "received"}


async def message_by_wamid(client: Client, wamid: str) -> Message:
    async with store_of(client).read() as tx:
        message = await tx.messages.get_by_wamid(wamid)
    assert message is not None, f"no message {wamid}"
    return message


async def everything(client: Client) -> list[Message]:
    async with store_of(client).read() as tx:
        return await tx.messages.find(MessageFilter())


async def settled(client: Client) -> None:
    await settle(client.app[DISPATCHER])


def at(timestamp: str | int) -> datetime:
    return datetime.fromtimestamp(int(timestamp), UTC)


# The verification handshake -----------------------------------------------------------


async def test_verification_echoes_the_challenge_only_for_the_right_token(meta: Client) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    ok = await meta.get("/webhook", params=query)
    assert ok.status == 200
    assert await ok.text() == "1158201444"

    wrong = await meta.get("/webhook", params={**query, "hub.verify_token": "guess"})
    assert wrong.status == 403
    assert (await wrong.json())["error"]["code"] == "verification_failed"
    not_subscribe = await meta.get("/webhook", params={**query, "hub.mode": "unsubscribe"})
    assert not_subscribe.status == 403


async def test_verification_is_refused_when_no_token_is_configured(
    aiohttp_client: AiohttpClient, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await aiohttp_client(make_app(make_settings(tmp_path), clock=clock))
    response = await client.get(
        "/webhook", params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    )
    assert response.status == 403
    assert "WA_VERIFY_TOKEN is not set" in (await response.json())["error"]["message"]


# Every fixture, end to end --------------------------------------------------------------

MESSAGE_FIXTURES: dict[str, dict[str, Any]] = {
    "text": {"kind": "text", "text": "Hi, do you ship to Canada?"},
    "context_reply": {"kind": "text", "text": "Yes, the blue one please"},
    "interactive_button_reply": {"kind": "button", "text": "Cancel", "choice_id": "cancel-button"},
    "interactive_list_reply": {
        "kind": "list",
        "text": "Priority Mail Express",
        "choice_id": "priority_express",
    },
    "interactive_nfm_reply": {"kind": "other", "text": "Sent"},
    "template_quick_reply": {"kind": "button", "text": "Shop now", "choice_id": "SHOP_NOW"},
    "image": {
        "kind": "media",
        "text": "This is the crack",
        "media_type": "image",
        "media_id": "2754859441498128",
    },
    "audio": {
        "kind": "media",
        "text": None,
        "media_type": "audio",
        "media_id": "1003383421387256",
    },
    "video": {"kind": "media", "text": "Unboxing", "media_type": "video"},
    "document": {"kind": "media", "text": "My receipt", "media_type": "document"},
    "sticker": {
        "kind": "media",
        "text": None,
        "media_type": "sticker",
        "media_id": "1090289749012345",
    },
    "location": {
        "kind": "location",
        "text": "Philz Coffee",
        "latitude": 37.483307,
        "longitude": -122.148981,
    },
    "contacts": {"kind": "other", "text": "Barbara J. Johnson"},
    "reaction": {"kind": "reaction", "text": "👍"},
    "unsupported": {"kind": "other", "text": None},
    "unknown_type": {"kind": "other", "text": None},
    "business_scoped_user": {"kind": "text", "text": "Hola, ¿tienen la talla M?"},
    "business_scoped_user_with_phone": {"kind": "text", "text": "Hey"},
}
TEMPLATE_WEBHOOKS = (
    "category_impending",
    "category_update",
    "quality_update",
    "status_disabled",
    "status_paused",
    "status_reinstated",
)
OTHER_FIXTURES = {
    "batch",
    "call_permission_reply",
    "edit",
    "group_text_stop",
    "revoke",
    "unknown_country_number",
    "status_delivered",
    "status_failed",
    "status_failed_marketing_stopped",
    "status_played",
    "status_read",
    "status_sent",
    "system_user_changed_number",
    "template_quick_reply_stop",
    "text_stop_keyword",
    "user_preferences_resume",
    "user_preferences_stop",
    "value_errors",
    # Template webhooks: tests/test_inbound_template_updates.py.
    *(f"template_{name}" for name in TEMPLATE_WEBHOOKS),
}


def test_every_fixture_has_a_test_of_what_it_stores() -> None:
    assert set(fixture_names()) == set(MESSAGE_FIXTURES) | OTHER_FIXTURES


@pytest.mark.parametrize("name", sorted(MESSAGE_FIXTURES))
async def test_a_message_is_stored_with_its_contact_window_and_hand_off(
    meta: Client, handler: RecordingHandler, name: str
) -> None:
    data = load(name)
    raw = first_message(data)
    profile = data["entry"][0]["changes"][0]["value"]["contacts"][0]
    await accepted(meta, data)

    stored = await message_by_wamid(meta, raw["id"])
    assert stored.direction is Direction.INBOUND
    assert stored.kind == raw["type"]
    assert stored.payload == raw, "the message is kept as Meta sent it, unknown fields too"
    assert stored.status is MessageStatus.RECEIVED
    assert stored.text == MESSAGE_FIXTURES[name]["text"]

    contact = await contact_of(store_of(meta), raw.get("from") or raw["from_user_id"])
    assert contact.name == profile["profile"]["name"]
    assert (contact.wa_id, contact.user_id) == (profile.get("wa_id"), profile.get("user_id"))
    assert contact.marketing_opt_in is True
    async with store_of(meta).read() as tx:
        history = await tx.contacts.consent_history(contact.id)
        conversation = await tx.conversations.get(contact.id)
    assert [(e.marketing_opt_in, e.source) for e in history] == [(True, ConsentSource.INBOUND)]
    assert conversation.last_inbound_at == at(raw["timestamp"])

    await settled(meta)
    [incoming] = handler.seen
    assert incoming.message.id == stored.id
    assert incoming.contact.id == contact.id
    assert incoming.new_contact is True
    said = incoming.input.model_dump()
    assert {key: said[key] for key in MESSAGE_FIXTURES[name]} == MESSAGE_FIXTURES[name]
    replied_to = (raw.get("context") or {}).get("id") or (raw.get("reaction") or {}).get(
        "message_id"
    )
    assert incoming.input.reply_to == replied_to
    async with store_of(meta).read() as tx:
        handoff = await tx.inbound.get_handoff(stored.id)
    assert handoff is not None
    assert handoff.outcome is Outcome.BOT


async def test_a_batch_stores_every_message_and_hands_them_over_in_order(
    meta: Client, handler: RecordingHandler, clock: FrozenClock
) -> None:
    data = load("batch")
    delivered = data["entry"][0]["changes"][1]["value"]["statuses"][0]
    sent = await sent_message(store_of(meta), clock.now(), delivered["id"])
    await accepted(meta, data)
    await settled(meta)
    assert [(i.contact.wa_id, i.input.text) for i in handler.seen if i.contact.wa_id == ANN] == [
        (ANN, "First"),
        (ANN, "Second"),
    ]
    assert sorted(handler.texts, key=str) == ["First", "Second", "Selamat pagi"]
    assert (await contact_of(store_of(meta), "60173526233")).name == "Lee Jen Ling"
    assert (await message_by_wamid(meta, sent.wamid or "")).status is MessageStatus.DELIVERED


async def test_a_notification_of_a_thousand_messages_is_stored_whole_and_handed_over_in_order(
    meta: Client, handler: RecordingHandler
) -> None:
    # Meta batches up to 1,000 updates in one POST; here 100 customers write 10 times each.
    data = load("text")
    template = data["entry"][0]["changes"][0]
    changes = []
    for customer in range(100):
        wa_id = f"1650555{customer:04d}"
        change = copy.deepcopy(template)
        value = change["value"]
        value["contacts"] = [{"profile": {"name": f"Customer {customer}"}, "wa_id": wa_id}]
        base = value["messages"][0]
        value["messages"] = [
            {**base, "from": wa_id, "id": f"wamid.batch.{customer}.{n}", "text": {"body": str(n)}}
            for n in range(10)
        ]
        changes.append(change)
    data["entry"][0]["changes"] = changes
    assert len(json.dumps(data)) < 1024 * 1024, "within the body limit Meta's batches respect"

    await accepted(meta, data)
    inbound = [m for m in await everything(meta) if m.direction is Direction.INBOUND]
    assert len(inbound) == 1000, "stored before the answer"
    await settled(meta)
    assert len(handler.seen) == 1000
    by_customer: dict[str, list[str]] = {}
    for incoming in handler.seen:
        by_customer.setdefault(incoming.contact.wa_id or "", []).append(incoming.input.text or "")
    assert len(by_customer) == 100
    assert all(texts == [str(n) for n in range(10)] for texts in by_customer.values())


async def test_the_same_notification_twice_stores_and_hands_over_one_message(
    meta: Client, handler: RecordingHandler
) -> None:
    data = load("text")
    await accepted(meta, data)
    await accepted(meta, data)
    await settled(meta)
    inbound = [m for m in await everything(meta) if m.direction is Direction.INBOUND]
    assert [m.wamid for m in inbound] == [first_message(data)["id"]]
    assert len(handler.seen) == 1
    metrics = await (await meta.get("/metrics")).text()
    assert 'optinflow_inbound_messages_total{result="stored"} 1.0' in metrics
    assert 'optinflow_inbound_messages_total{result="duplicate"} 1.0' in metrics


async def test_a_stop_word_opts_out_confirms_and_never_reaches_the_bot(
    meta: Client, handler: RecordingHandler
) -> None:
    await accepted(meta, load("text_stop_keyword"))
    contact = await contact_of(store_of(meta), ANN)
    assert contact.marketing_opt_in is False
    async with store_of(meta).read() as tx:
        history = await tx.contacts.consent_history(contact.id)
    assert [(e.marketing_opt_in, e.source) for e in history] == [
        (True, ConsentSource.INBOUND),
        (False, ConsentSource.KEYWORD),
    ]
    [reply] = [m for m in await everything(meta) if m.direction is Direction.OUTBOUND]
    assert (reply.channel, reply.kind, reply.text, reply.status) == (
        Channel.BOT,
        "text",
        STOP_REPLY,
        MessageStatus.QUEUED,
    )
    await settled(meta)
    assert handler.seen == []


async def test_a_stop_button_opts_out_with_the_button_as_source(
    meta: Client, handler: RecordingHandler
) -> None:
    await accepted(meta, load("template_quick_reply_stop"))
    contact = await contact_of(store_of(meta), ANN)
    async with store_of(meta).read() as tx:
        history = await tx.contacts.consent_history(contact.id)
    assert [(e.marketing_opt_in, e.source) for e in history][-1] == (False, ConsentSource.BUTTON)
    assert [m.text for m in await everything(meta) if m.direction is Direction.OUTBOUND] == [
        STOP_REPLY
    ]
    await settled(meta)
    assert handler.seen == []


async def test_a_system_message_is_kept_but_opens_no_window_and_is_not_answered(
    meta: Client, handler: RecordingHandler
) -> None:
    data = load("system_user_changed_number")
    await accepted(meta, data)
    stored = await message_by_wamid(meta, first_message(data)["id"])
    assert stored.kind == "system"
    async with store_of(meta).read() as tx:
        conversation = await tx.conversations.get(stored.contact_id)
        handoff = await tx.inbound.get_handoff(stored.id)
    assert conversation.last_inbound_at is None
    assert handoff is not None
    assert handoff.outcome is Outcome.SYSTEM
    await settled(meta)
    assert handler.seen == []


STATUS_FIXTURES = {
    # fixture: (status the message ends in, failure code, opt-in afterwards)
    "status_sent": (MessageStatus.SENT, None, True),
    "status_delivered": (MessageStatus.DELIVERED, None, True),
    "status_read": (MessageStatus.READ, None, True),
    "status_played": (MessageStatus.PLAYED, None, True),
    "status_failed": (MessageStatus.FAILED, "131026", True),
    "status_failed_marketing_stopped": (MessageStatus.FAILED, "131050", False),
}


@pytest.mark.parametrize("name", sorted(STATUS_FIXTURES))
async def test_a_status_moves_its_message_and_keeps_what_meta_said(
    meta: Client, clock: FrozenClock, name: str
) -> None:
    data = load(name)
    update = data["entry"][0]["changes"][0]["value"]["statuses"][0]
    message = await sent_message(store_of(meta), clock.now(), update["id"])
    await accepted(meta, data)

    stored = await message_by_wamid(meta, update["id"])
    status, failure_code, opted_in = STATUS_FIXTURES[name]
    assert stored.id == message.id
    assert stored.status is status
    assert (stored.failure.code if stored.failure else None) == failure_code
    last = stored.history[-1]
    assert (last.status, last.at) == (MessageStatus(update["status"]), at(update["timestamp"]))
    for key in ("pricing", "conversation", "errors"):
        assert (last.details or {}).get(key) == update.get(key)
    contact = await contact_of(store_of(meta), ANN)
    assert contact.marketing_opt_in is opted_in
    if not opted_in:
        async with store_of(meta).read() as tx:
            history = await tx.contacts.consent_history(contact.id)
        assert (history[-1].marketing_opt_in, history[-1].source) == (
            False,
            ConsentSource.WHATSAPP_ERROR,
        )


async def test_user_preferences_stop_and_resume_change_the_opt_in(meta: Client) -> None:
    await accepted(meta, load("user_preferences_stop"))
    contact = await contact_of(store_of(meta), ANN)
    assert (contact.marketing_opt_in, contact.name) == (False, "Sheena Nelson")
    await accepted(meta, load("user_preferences_resume"))
    async with store_of(meta).read() as tx:
        history = await tx.contacts.consent_history(contact.id)
        after = await tx.contacts.get(ANN)
    assert after is not None
    assert after.marketing_opt_in is True
    assert [(e.marketing_opt_in, e.source) for e in history] == [
        (False, ConsentSource.WHATSAPP_PREFERENCES),
        (True, ConsentSource.WHATSAPP_PREFERENCES),
    ]
    assert await everything(meta) == [], "a preference is not a message"


async def test_errors_meta_reports_are_counted_and_store_nothing(
    meta: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await accepted(meta, load("value_errors"))
    assert await everything(meta) == []
    assert "WhatsApp reported error 130429" in caplog.text
    metrics = await (await meta.get("/metrics")).text()
    assert 'optinflow_whatsapp_errors_total{code="130429"} 1.0' in metrics


async def test_an_agent_owned_conversation_is_not_handed_to_the_bot(
    meta: Client, handler: RecordingHandler
) -> None:
    await accepted(meta, text_notification("hello", wamid="wamid.first"))
    await settled(meta)
    contact = await contact_of(store_of(meta), ANN)
    await store_of(meta).write(
        lambda tx: tx.conversations.set_owner(contact.id, Owner.AGENT, "eve")
    )

    await accepted(meta, text_notification("is anyone there?", wamid="wamid.second"))
    await accepted(meta, text_notification("STOP", wamid="wamid.third"))
    await settled(meta)
    assert handler.texts == ["hello"]
    second = await message_by_wamid(meta, "wamid.second")
    async with store_of(meta).read() as tx:
        handoff = await tx.inbound.get_handoff(second.id)
        opted_in = (await tx.contacts.get(ANN)).marketing_opt_in  # type: ignore[union-attr]
    assert handoff is not None
    assert handoff.outcome is Outcome.AGENT
    assert opted_in is False, "a stop word still changes consent while an agent answers"


# Bad input: answered, logged, nothing stored, the server keeps serving ---------------


async def assert_nothing_stored(client: Client) -> None:
    assert await everything(client) == []
    async with store_of(client).read() as tx:
        assert await tx.contacts.list() == []


async def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(
    meta: Client, caplog: pytest.LogCaptureFixture
) -> None:
    data = load("text")
    with caplog.at_level(logging.WARNING):
        missing = await post(meta, data, secret=None)
        wrong = await post(meta, data, secret="another-secret")
        tampered = await post(
            meta, json.dumps(data).encode(), headers={HEADER: sign(b"{}", SECRET)}, secret=None
        )
    for response in (missing, wrong, tampered):
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_signature"
    assert caplog.text.count("refused (bad_signature)") == 3
    await assert_nothing_stored(meta)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "malformed_json", None),
        (b"\xff\xfe\x00garbage", 400, "malformed_json", None),
        (b"[" * 5000 + b"]" * 5000, 400, "malformed_json", None),
        (b"[1, 2]", 400, "invalid_notification", "body"),
        (b'{"object": "whatsapp_business_account"}', 400, "invalid_notification", "entry"),
    ],
)
async def test_bodies_that_are_not_notifications_are_400(
    meta: Client, body: bytes, status: int, code: str, field: str | None
) -> None:
    response = await post(meta, body)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    if field is not None:
        assert error["fields"][0]["field"] == field
    await assert_nothing_stored(meta)


async def test_an_item_that_does_not_validate_is_left_out_and_the_rest_stored(
    meta: Client, handler: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    data = text_notification("one", wamid="wamid.good.1")
    value = data["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    value["messages"] = [
        good,
        {**good, "id": "wamid.bad", "from": "5678"},
        {**good, "id": "wamid.good.2", "text": {"body": "two"}},
        {**good, "id": "wamid.good.3", "text": {"body": "three"}},
    ]
    with caplog.at_level(logging.WARNING):
        await accepted(meta, data)
    inbound = [m.wamid for m in await everything(meta) if m.direction is Direction.INBOUND]
    assert sorted(inbound, key=str) == ["wamid.good.1", "wamid.good.2", "wamid.good.3"]
    assert "entry[0].changes[0].value.messages[1].from" in caplog.text
    assert "'5678' is not a phone number" in caplog.text
    metrics = await (await meta.get("/metrics")).text()
    assert 'optinflow_webhook_items_skipped_total{reason="invalid_message"} 1.0' in metrics
    await settled(meta)
    assert handler.texts == ["one", "two", "three"]


@pytest.mark.parametrize(
    "bad",
    [
        {"from_user_id": "foo_bar", "from": None},  # a user id that is not one, no number
        {"type": None},  # a missing field
        {"type": {"nested": ["junk"]}},
        {"timestamp": "x" * 5000},
        {"timestamp": 10**40},
        {"id": ""},
    ],
)
async def test_odd_messages_are_skipped_and_counted_never_refused(
    meta: Client, bad: dict[str, Any]
) -> None:
    data = load("batch")
    message = data["entry"][0]["changes"][0]["value"]["messages"][1]
    for key, replacement in bad.items():
        if replacement is None:
            message.pop(key, None)
        else:
            message[key] = replacement
    await accepted(meta, data)
    inbound = [m for m in await everything(meta) if m.direction is Direction.INBOUND]
    assert len(inbound) == 2, "the batch's two other messages"
    metrics = await (await meta.get("/metrics")).text()
    assert 'optinflow_webhook_items_skipped_total{reason="invalid_message"} 1.0' in metrics


async def test_a_timestamp_written_as_iso_text_without_a_zone_is_utc(meta: Client) -> None:
    data = text_notification("hi", wamid="wamid.iso")
    data["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "2024-01-01T00:00:00"
    await accepted(meta, data)
    stored = await message_by_wamid(meta, "wamid.iso")
    async with store_of(meta).read() as tx:
        conversation = await tx.conversations.get(stored.contact_id)
    assert conversation.last_inbound_at == datetime(2024, 1, 1, tzinfo=UTC)


async def test_a_signature_that_is_not_ascii_is_401(meta: Client) -> None:
    raw = json.dumps(load("text")).encode()
    response = await meta.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: "sha256=\xe9"},
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_signature"
    await assert_nothing_stored(meta)


async def test_a_user_id_that_is_not_business_scoped_is_not_attached(meta: Client) -> None:
    data = load("business_scoped_user_with_phone")
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["user_id"] = "foo_bar"
    value["messages"][0]["from_user_id"] = "foo_bar"
    await accepted(meta, data)
    contact = await contact_of(store_of(meta), value["messages"][0]["from"])
    assert contact.user_id is None
    async with store_of(meta).read() as tx:
        assert await tx.contacts.get("foo_bar") is None


async def test_a_status_naming_a_customers_message_changes_nothing(meta: Client) -> None:
    await accepted(meta, load("text"))
    wamid = first_message(load("text"))["id"]
    status = load("status_failed_marketing_stopped")
    status["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid
    await accepted(meta, status)
    stored = await message_by_wamid(meta, wamid)
    assert (stored.status, len(stored.history)) == (MessageStatus.RECEIVED, 1)
    assert (await contact_of(store_of(meta), ANN)).marketing_opt_in is True
    metrics = await (await meta.get("/metrics")).text()
    assert 'optinflow_status_updates_total{result="not_outbound"} 1.0' in metrics


async def test_a_group_message_is_kept_but_neither_answered_nor_a_consent_change(
    meta: Client, handler: RecordingHandler
) -> None:
    data = load("group_text_stop")
    await accepted(meta, data)
    stored = await message_by_wamid(meta, first_message(data)["id"])
    assert (stored.payload or {}).get("group_id") == first_message(data)["group_id"]
    contact = await contact_of(store_of(meta), ANN)
    async with store_of(meta).read() as tx:
        history = await tx.contacts.consent_history(contact.id)
        conversation = await tx.conversations.get(contact.id)
        handoff = await tx.inbound.get_handoff(stored.id)
    assert contact.marketing_opt_in is True
    assert [e.source for e in history] == [ConsentSource.INBOUND]
    assert conversation.last_inbound_at is None, "no one-to-one window"
    assert handoff is not None
    assert handoff.outcome is Outcome.GROUP
    await settled(meta)
    assert handler.seen == []
    assert [m for m in await everything(meta) if m.direction is Direction.OUTBOUND] == []


@pytest.mark.parametrize(
    ("name", "answered"),
    [
        ("text", True),
        ("reaction", False),
        ("edit", False),
        ("revoke", False),
        ("call_permission_reply", False),
    ],
)
async def test_the_shipped_bot_answers_only_what_a_customer_wrote_to_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, clock: FrozenClock, name: str, answered: bool
) -> None:
    client = await aiohttp_client(
        make_app(make_settings(tmp_path, WA_APP_SECRET=SECRET), clock=clock)
    )
    data = load(name)
    await accepted(client, data)
    await settled(client)
    stored = await message_by_wamid(client, first_message(data)["id"])
    assert stored.kind == first_message(data)["type"]
    replies = [m for m in await everything(client) if m.direction is Direction.OUTBOUND]
    assert bool(replies) is answered
    async with store_of(client).read() as tx:
        session = await tx.flow_sessions.get(stored.contact_id)
    assert (session is not None) is answered


async def test_a_contact_of_a_number_the_library_does_not_know_is_addressable(
    meta: Client,
) -> None:
    data = load("unknown_country_number")
    wa_id = first_message(data)["from"]
    await accepted(meta, data)
    for path in (
        f"/api/v1/contacts/{wa_id}",
        f"/api/v1/contacts/{wa_id}/consent",
        f"/api/v1/conversations/{wa_id}",
        f"/api/v1/contacts/+{wa_id}",
    ):
        response = await meta.get(path, headers=AUTH)
        assert response.status == 200, (path, await response.text())
    sent = await meta.post(
        "/api/v1/messages", json={"to": wa_id, "text": "We open at nine"}, headers=AUTH
    )
    assert sent.status == 202, await sent.text()
    assert (await sent.json())["to"] == wa_id

    unknown = "972912345679"  # the same unknown range, no contact: strict as ever
    assert (await meta.get(f"/api/v1/contacts/{unknown}", headers=AUTH)).status == 404
    refused = await meta.post(
        "/api/v1/messages", json={"to": unknown, "text": "hello"}, headers=AUTH
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["fields"][0]["field"] == "to"
    created = await meta.post("/api/v1/contacts", json={"wa_id": unknown}, headers=AUTH)
    assert created.status == 422
    async with store_of(meta).read() as tx:
        assert await tx.contacts.get(unknown) is None


async def test_a_business_scoped_user_is_addressable_by_its_user_id(meta: Client) -> None:
    data = load("business_scoped_user")
    user_id = first_message(data)["from_user_id"]
    await accepted(meta, data)
    for path in (f"/api/v1/contacts/{user_id}", f"/api/v1/conversations/{user_id}"):
        response = await meta.get(path, headers=AUTH)
        assert response.status == 200, (path, await response.text())
    sent = await meta.post(
        "/api/v1/messages", json={"to": user_id, "text": "Sí, la tenemos"}, headers=AUTH
    )
    assert sent.status == 202, await sent.text()


async def test_a_body_over_one_mebibyte_is_413(meta: Client) -> None:
    padding = "x" * (1024 * 1024)
    data = text_notification("hi", wamid="wamid.big")
    data["entry"][0]["changes"][0]["value"]["messages"][0]["note"] = padding
    declared = await post(meta, data)
    assert declared.status == 413

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        raw = json.dumps(data).encode()
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    streamed = await meta.post("/webhook", data=chunks(), headers={HEADER: "sha256=x"})
    assert streamed.status == 413
    assert (await streamed.json())["error"]["code"] == "body_too_large"
    await assert_nothing_stored(meta)
    assert (await meta.get("/healthz")).status == 200
    await accepted(meta, load("text"))


async def test_halves_of_utf16_pairs_are_mended_not_refused(meta: Client) -> None:
    raw = json.dumps(text_notification("x", wamid="wamid.cut")).replace('"x"', '"cut \\ud83d"')
    response = await post(meta, raw.replace('"Sheena Nelson"', '"\\udfff"').encode())
    assert response.status == 200
    stored = await message_by_wamid(meta, "wamid.cut")
    assert stored.text == "cut \ufffd"
    assert (await contact_of(store_of(meta), ANN)).name == "\ufffd"


async def test_another_object_is_acknowledged_and_ignored(meta: Client) -> None:
    response = await post(meta, {"object": "page", "entry": [{"id": "1", "changes": []}]})
    assert response.status == 200
    assert await response.json() == {"status": "ignored"}
    await assert_nothing_stored(meta)


async def test_without_an_app_secret_unsigned_notifications_are_taken_and_a_warning_given(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        client = await aiohttp_client(make_app(make_settings(tmp_path), clock=clock))
    assert "WA_APP_SECRET IS NOT SET" in caplog.text
    response = await post(client, load("text"), secret=None)
    assert response.status == 200
    await settled(client)
    async with store_of(client).read() as tx:
        handoff = await tx.inbound.get_handoff(
            (await message_by_wamid(client, first_message(load("text"))["id"])).id
        )
    assert handoff is not None
    assert handoff.outcome is Outcome.BOT, "the shipped flows answer it"


async def test_concurrent_notifications_are_all_stored(meta: Client) -> None:
    senders = [f"1650555{n:04d}" for n in range(40)]
    responses = await asyncio.gather(
        *(
            post(meta, text_notification(f"hi {n}", wamid=f"wamid.c{n}", sender=sender))
            for n, sender in enumerate(senders)
        )
    )
    assert {r.status for r in responses} == {200}
    await settled(meta)
    assert len(await everything(meta)) == 40


# Anything Meta (or anyone) might send: never a 5xx, and a valid envelope is 200 -------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["", "5678", "972912345678", "2024-01-01T00:00:00", "US.1", "foo_bar", "\u0000", "é" * 300]
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def mutate(data: Any, path: list[int], replacement: Any) -> Any:
    """Replace (or drop, for None) the node ``path`` points at, choosing by index."""
    if not path or not isinstance(data, dict | list) or not data:
        return replacement
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copied = copy.copy(data)
    if replacement is None and len(path) == 1 and isinstance(copied, dict):
        del copied[key]
    else:
        copied[key] = mutate(data[key], path[1:], replacement)
    return copied


def is_envelope(body: bytes) -> bool:
    """What alone may make a signed notification 400: not JSON, or not ``{"object": a
    string, "entry": [{"changes": [{...}, ...]}, ...]}``."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict) or "entry" not in data or not isinstance(data["entry"], list):
        return False
    kind = data.get("object")
    if not isinstance(kind, str | int | float) or isinstance(kind, bool):
        return False  # (numbers are read as text, as everywhere in Meta's JSON)
    for entry in data["entry"]:
        if not isinstance(entry, dict):
            return False
        changes = entry.get("changes", [])
        if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
            return False
    return True


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(fixture_names()),
    mutations=st.lists(
        st.tuples(st.lists(st.integers(min_value=0, max_value=50), max_size=9), JSON),
        min_size=1,
        max_size=3,
    ),
    noise=st.binary(max_size=64),
    which=st.integers(min_value=0, max_value=3),
)
async def test_mutated_real_notifications_never_make_a_5xx_and_a_valid_envelope_is_200(
    meta: Client, name: str, mutations: list[tuple[list[int], Any]], noise: bytes, which: int
) -> None:
    mutated: Any = load(name)
    for path, replacement in mutations:
        mutated = mutate(mutated, path, replacement)
    body = [
        json.dumps(mutated).encode(),
        noise,
        json.dumps(mutations[0][1]).encode(),
        json.dumps(mutated).encode()[: len(noise) * 7],
    ][which]
    response = await post(meta, body)
    assert response.status == (200 if is_envelope(body) else 400), await response.text()
    assert (await meta.get("/healthz")).status == 200


def test_the_envelope_rule_of_the_property_test() -> None:
    assert is_envelope(json.dumps(load("batch")).encode())
    assert not is_envelope(b'{"object": "whatsapp_business_account"}')
    assert not is_envelope(b'{"object": true, "entry": []}')
    assert not is_envelope(b'{"object": "x", "entry": [{"changes": [7]}]}')

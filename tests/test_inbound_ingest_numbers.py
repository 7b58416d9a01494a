"""Inbound on several business numbers, through the real signed ``POST /webhook`` with
Meta's payload shapes: each message is routed by ``metadata.phone_number_id``; one to a
number not registered here is stored against no number, counted and never answered;
a stop from Meta (``user_preferences``, error 131050) is recorded with the number it
came through; ``phone_number_quality_update`` updates the number's health."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from engine.clock import FrozenClock
from engine.models.number import LimitTier, Quality
from engine.store import Store
from engine.store.messages import MessageFilter
from engine.web.keys import BOT_HANDLER, DISPATCHER, STORE
from engine.whatsapp.signature import HEADER, sign
from tests.conftest import AUTH, SAMPLE_PHONE_NUMBER_ID, AiohttpClient, make_app, make_settings
from tests.inbound_support import (
    ANN,
    RecordingHandler,
    contact_of,
    load,
    sent_message,
    settle,
    text_notification,
)

Client = TestClient[Any, Any]
SECRET = "test-app-secret"
A = SAMPLE_PHONE_NUMBER_ID  # WA_PHONE_NUMBER_ID, registered at start
B = "106540352242923"
B_DISPLAY = "15550783882"
UNKNOWN = "999999999999999"


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def webhook_app(tmp_path: Path, clock: FrozenClock, handler: RecordingHandler) -> web.Application:
    app = make_app(make_settings(tmp_path, WA_APP_SECRET=SECRET), clock=clock)
    app[BOT_HANDLER] = handler
    return app


@pytest.fixture
async def meta(aiohttp_client: AiohttpClient, webhook_app: web.Application) -> Client:
    client: Client = await aiohttp_client(webhook_app)
    registered = await client.post(
        "/api/v1/numbers",
        json={"phone_number_id": B, "display_phone_number": "+1 555-078-3882"},
        headers=AUTH,
    )
    assert registered.status == 201, await registered.text()
    return client


def store_of(client: Client) -> Store:
    return client.app[STORE]  # type: ignore[no-any-return]


def to_number(data: dict[str, Any], phone_number_id: str, display: str) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    changed["entry"][0]["changes"][0]["value"]["metadata"] = {
        "display_phone_number": display,
        "phone_number_id": phone_number_id,
    }
    return changed


def quality_update(**value: Any) -> dict[str, Any]:
    """Meta's ``phone_number_quality_update`` notification."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "time": 1772442002,
                "changes": [{"value": value, "field": "phone_number_quality_update"}],
            }
        ],
    }


async def accepted(client: Client, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    response = await client.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, SECRET)},
    )
    assert response.status == 200, await response.text()


async def number_of(client: Client, wamid: str) -> str | None:
    async with store_of(client).read() as tx:
        message = await tx.messages.get_by_wamid(wamid)
        assert message is not None
        return await tx.numbers.of_message(message.id)


async def metric(client: Client, line_start: str) -> float:
    text = await (await client.get("/metrics", headers=AUTH)).text()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize(
    ("phone_number_id", "display", "stored_against", "answered"),
    [
        (A, "15550783881", A, True),
        (B, B_DISPLAY, B, True),
        (UNKNOWN, "15559999999", None, False),
    ],
)
async def test_a_message_is_routed_by_the_number_it_came_to(
    meta: Client,
    handler: RecordingHandler,
    clock: FrozenClock,
    phone_number_id: str,
    display: str,
    stored_against: str | None,
    answered: bool,
) -> None:
    before = await metric(meta, 'optinflow_inbound_messages_total{result="unknown_number"}')
    data = to_number(text_notification("hi", wamid="wamid.routed"), phone_number_id, display)
    await accepted(meta, data)
    await settle(meta.app[DISPATCHER])
    assert await number_of(meta, "wamid.routed") == stored_against
    assert handler.texts == (["hi"] if answered else [])
    contact = await contact_of(store_of(meta), ANN)
    async with store_of(meta).read() as tx:
        windows = {n: await tx.numbers.last_inbound(contact.id, n) for n in (A, B)}
        answers_from = await tx.numbers.last_written_to(contact.id)
        handoffs = await tx.inbound.pending(exclude=(), limit=10)
    opened = {n for n, at in windows.items() if at is not None}
    assert opened == ({stored_against} if stored_against else set())
    assert answers_from == stored_against
    assert handoffs == []
    after = await metric(meta, 'optinflow_inbound_messages_total{result="unknown_number"}')
    assert after - before == (0 if answered else 1)


async def test_an_unknown_number_is_never_answered_even_a_stop_word(
    meta: Client, handler: RecordingHandler
) -> None:
    await accepted(meta, to_number(load("text_stop_keyword"), UNKNOWN, "15559999999"))
    await settle(meta.app[DISPATCHER])
    contact = await contact_of(store_of(meta), ANN)
    assert handler.seen == []
    # Nothing was sent (a stop confirmation would have gone out from another number),
    # and nothing changed the customer's consent.
    async with store_of(meta).read() as tx:
        stored = await tx.messages.find(MessageFilter())
        pending = await tx.inbound.pending(exclude=(), limit=10)
    assert [m.direction.value for m in stored] == ["inbound"]
    assert pending == []
    assert contact.marketing_opt_in is True


async def test_a_stop_from_meta_is_recorded_with_the_number_it_came_through(
    meta: Client, clock: FrozenClock
) -> None:
    await accepted(meta, to_number(load("user_preferences_stop"), B, B_DISPLAY))
    contact = await contact_of(store_of(meta), ANN)
    assert contact.marketing_opt_in is False  # one value for the business
    async with store_of(meta).read() as tx:
        ledger = await tx.contacts.consent_history(contact.id)
    assert ledger[-1].note is not None
    assert f"business number {B}" in ledger[-1].note


async def test_error_131050_is_recorded_with_the_number_the_message_went_from(
    meta: Client, clock: FrozenClock
) -> None:
    data = load("status_failed_marketing_stopped")
    wamid = data["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    await sent_message(store_of(meta), clock.now(), wamid, phone_number_id=B)
    await accepted(meta, data)
    contact = await contact_of(store_of(meta), ANN)
    async with store_of(meta).read() as tx:
        ledger = await tx.contacts.consent_history(contact.id)
    assert contact.marketing_opt_in is False
    assert ledger[-1].note is not None
    assert f"business number {B})" in ledger[-1].note


@pytest.mark.parametrize(
    ("value", "quality", "tier", "flagged", "daily_limit"),
    [
        # Meta's sample shapes: a display number, an event, the current limit.
        (
            {"display_phone_number": B_DISPLAY, "event": "FLAGGED", "current_limit": "TIER_10K"},
            Quality.UNKNOWN,
            LimitTier.TIER_10K,
            True,
            10_000,
        ),
        (
            {
                "display_phone_number": B_DISPLAY,
                "event": "DOWNGRADE",
                "old_limit": "TIER_1K",
                "current_limit": "TIER_250",
            },
            Quality.UNKNOWN,
            LimitTier.TIER_250,
            False,
            250,
        ),
        (
            {
                "display_phone_number": B_DISPLAY,
                "event": "UPGRADE",
                "current_limit": "TIER_UNLIMITED",
                "quality_rating": "GREEN",
            },
            Quality.GREEN,
            LimitTier.TIER_UNLIMITED,
            False,
            None,
        ),
        (
            {
                "display_phone_number": B_DISPLAY,
                "event": "THROUGHPUT_UPGRADE",
                "max_daily_conversations_per_business": "TIER_2K",
            },
            Quality.UNKNOWN,
            LimitTier.TIER_2K,
            False,
            2_000,
        ),
        (
            {"display_phone_number": B_DISPLAY, "event": "DOWNGRADE", "quality_rating": "RED"},
            Quality.RED,
            None,
            False,
            None,
        ),
        # A tier we do not know is ignored; the rest of the update applies.
        (
            {"display_phone_number": B_DISPLAY, "event": "FLAGGED", "current_limit": "TIER_9X"},
            Quality.UNKNOWN,
            None,
            True,
            None,
        ),
    ],
)
async def test_a_quality_update_changes_the_numbers_health(
    meta: Client,
    value: dict[str, Any],
    quality: Quality,
    tier: LimitTier | None,
    flagged: bool,
    daily_limit: int | None,
) -> None:
    await accepted(meta, quality_update(**value))
    answer = await meta.get(f"/api/v1/numbers/{B}", headers=AUTH)
    number = await answer.json()
    assert (
        number["quality_rating"],
        number["messaging_limit_tier"],
        number["flagged"],
        number["daily_limit"],
    ) == (quality.value, tier.value if tier else None, flagged, daily_limit)
    untouched = await (await meta.get(f"/api/v1/numbers/{A}", headers=AUTH)).json()
    assert (untouched["flagged"], untouched["messaging_limit_tier"]) == (False, None)


async def test_unflagged_clears_the_flag_and_an_unknown_display_number_changes_nothing(
    meta: Client,
) -> None:
    await accepted(meta, quality_update(display_phone_number=B_DISPLAY, event="FLAGGED"))
    await accepted(meta, quality_update(display_phone_number="15559999999", event="FLAGGED"))
    await accepted(meta, quality_update(event="FLAGGED"))  # no display number: left out
    listed = (await (await meta.get("/api/v1/numbers", headers=AUTH)).json())["numbers"]
    assert [(n["phone_number_id"], n["status"]) for n in listed] == [
        (A, "connected"),
        (B, "flagged"),
    ]
    await accepted(meta, quality_update(display_phone_number=B_DISPLAY, event="UNFLAGGED"))
    number = await (await meta.get(f"/api/v1/numbers/{B}", headers=AUTH)).json()
    assert (number["flagged"], number["status"]) == (False, "connected")

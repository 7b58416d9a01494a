"""``python -m engine customer-says``: a customer's message in, the bot's answer shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.devtools.customer import customer_says
from engine.web.keys import SETTINGS
from tests.outbound_support import start_outbound


async def test_hi_prints_the_welcome_menu_the_simulator_received(
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    settings = outbound.app[SETTINGS]  # signs with its WA_APP_SECRET, as Meta would
    started = time.monotonic()
    assert await customer_says(settings, "hi", "16505551234", "Ann", wait=30.0) == 0
    assert time.monotonic() - started < 10, "it returns once the answer came, not at the wait"
    assert capsys.readouterr().out.splitlines() == [
        "you (16505551234): hi",
        "business (interactive): Hi Ann! How can we help you today?",
        "  [Order status] [See offers] [Talk to a person]",
    ]


async def test_a_refused_webhook_is_reported(
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    wrong_secret = outbound.app[SETTINGS].model_copy(update={"wa_app_secret": "not-the-secret"})
    assert await customer_says(wrong_secret, "hi", "16505551234", "Ann", wait=0.5) == 1
    assert "the webhook answered 401" in capsys.readouterr().out


async def test_a_customer_known_by_a_user_id_only_end_to_end(
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """They write with Meta's user-id shape (no phone number), the bot answers them, an
    API message to the user id goes out with ``recipient``, and its statuses come back
    naming them with ``recipient_user_id``."""
    user_id = "US.13491208655302741918"
    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    settings = outbound.app[SETTINGS]
    assert await customer_says(settings, "hi", user_id, "Pablo", wait=30.0) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"you ({user_id}): hi",
        "business (interactive): Hi Pablo! How can we help you today?",
    ]
    contact = await (await outbound.client.get(f"/api/v1/contacts/{user_id}")).json()
    assert (contact["wa_id"], contact["user_id"], contact["name"]) == (None, user_id, "Pablo")

    accepted = await outbound.send(to=user_id, text="Your parcel left the warehouse.")
    delivered = await outbound.wait_for(accepted["id"], "delivered", "read")
    sent = await outbound.received(user_id)
    assert [s["body"].get("recipient") for s in sent] == [user_id, user_id]
    assert not any("to" in s["body"] for s in sent)
    statuses = [h for h in delivered["history"] if h["status"] in ("sent", "delivered")]
    assert statuses
    assert all(h["details"].get("recipient_user_id") == user_id for h in statuses)
    assert not any("recipient_id" in h["details"] for h in statuses)


async def test_a_customer_sends_a_document_the_console_then_serves(
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from engine.devtools.simulator import SIMULATOR
    from tests.desk import messages_of, store_of

    outbound = await start_outbound(aiohttp_client, tmp_path, clock)
    settings = outbound.app[SETTINGS]
    receipt = tmp_path / "receipt.pdf"
    receipt.write_bytes(b"%PDF-1.4 receipt")
    code = await customer_says(
        settings, "my receipt", "16505551234", "Ann", wait=0.5, document=receipt
    )
    assert code == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "you (16505551234): [document receipt.pdf] my receipt"
    )
    [message] = [
        m
        for m in await messages_of(store_of(outbound.client), "16505551234")
        if m.direction == "inbound"
    ]
    assert message.payload is not None
    document = message.payload["document"]
    assert (document["filename"], document["caption"]) == ("receipt.pdf", "my receipt")
    stored = outbound.app[SIMULATOR].media(document["id"])
    assert stored is not None
    assert (stored.content, stored.mime_type) == (b"%PDF-1.4 receipt", "application/pdf")

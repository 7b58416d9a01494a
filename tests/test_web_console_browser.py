"""The agents' console in a real browser: Debian's Chromium driven by Playwright against
the real server on loopback.

An agent signs in, takes over a conversation from the queue, sees that the contact
opted out of marketing, picks a MARKETING template, sees the warning, cancels
(nothing is recorded), then confirms and sends: the message is recorded with the
confirmation, reaches the built-in Cloud API simulator, and its delivery ticks come
back through the webhook while the page is open. Screenshots of the warning and of
the conversation view are saved under ``artifacts/``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.models import Channel, MessageStatus, Owner
from engine.models.content import TextContent
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Store, Tx
from engine.web.keys import STORE
from tests.conftest import AUTH, ROOT, make_app, make_settings
from tests.desk import PASSWORD, Client, add_agent, add_contact, receive
from tests.outbound_support import APP_SECRET, eventually

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
ANN = "ann@example.com"
CHRIS = "16505551234"


def require_chromium() -> None:
    """Skip where Chromium cannot be installed; in CI (which installs it) fail instead."""
    missing = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing is None and not CHROMIUM.exists():
        missing = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1440, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(10_000)
            yield page
        finally:
            await browser.close()


async def bot_said(store: Store, wa_id: str, text: str, status: MessageStatus, at: Any) -> None:
    async def job(tx: Tx) -> None:
        contact = await tx.contacts.get(wa_id)
        assert contact is not None
        sent = await enqueue(
            tx, OutboundRequest(contact, Channel.BOT, TextContent(body=text)), now=at
        )
        assert sent.message is not None
        for step in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ):
            await tx.messages.change_status(sent.message.id, step, at=at)
            if step is status:
                break

    await store.write(job)


async def hand_off(store: Store, wa_id: str) -> None:
    """What a flow's handoff step does: the conversation waits in the agents' queue."""

    async def job(tx: Tx) -> None:
        contact = await tx.contacts.get(wa_id)
        assert contact is not None
        await tx.conversations.set_owner(contact.id, Owner.AGENT, None)

    await store.write(job)


async def seed(api: Client, store: Store, clock: FrozenClock) -> None:
    await add_agent(api, ANN, name="Ann Lee")
    await add_contact(api, CHRIS, opted_in=False, name="Chris Moreno")
    await add_contact(api, "447911123456", name="Dana Okafor")
    await add_contact(api, "4915123456789", name="Eli Novak")
    start = clock.now() - timedelta(minutes=42)
    await receive(store, "447911123456", "What time do you open on Saturday?", start)
    await bot_said(
        store, "447911123456", "We open at 9:00 on Saturdays.", MessageStatus.READ, start
    )
    await receive(store, CHRIS, "Hi, my jacket order hasn't arrived yet.", start)
    await bot_said(
        store,
        CHRIS,
        "Sorry to hear that! Let me find someone from the team for you.",
        MessageStatus.READ,
        start + timedelta(seconds=5),
    )
    await hand_off(store, CHRIS)
    await receive(store, CHRIS, "The order number is A-1042.", start + timedelta(minutes=1))
    await receive(store, "4915123456789", "Can I change my delivery address?", clock.now())
    await receive(store, "4915123456789", "It's for order A-0977.", clock.now())
    await hand_off(store, "4915123456789")


async def compose_rows(api: Client) -> list[dict[str, Any]]:
    view = await (await api.get(f"/api/v1/conversations/{CHRIS}")).json()
    return [m for m in view["messages"] if m["channel"] == "compose"]


def expect_of() -> Any:
    from playwright.async_api import expect

    return expect


async def test_an_agent_confirms_marketing_to_an_opted_out_contact_in_the_console(
    aiohttp_server: Any,
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    browser_page: Any,
) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path,
        PORT=port,
        WA_APP_SECRET=APP_SECRET,
        OUTBOUND_WORKER=True,
        SIMULATOR_STATUS_DELAY_SECONDS=0.2,  # ticks a person can watch move
    )
    app = make_app(settings, clock=clock)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1", port=port)
    api: Client = await aiohttp_client(server, headers=AUTH)
    store = app[STORE]
    await seed(api, store, clock)
    page = browser_page
    expect = expect_of()
    base = str(server.make_url(""))

    await page.goto(f"{base}/console")
    assert "/console/login" in page.url
    await page.fill('input[name="email"]', ANN)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"{base}/console")

    queue = page.locator('.conv-list[data-list="queue"]')
    await queue.locator(f'[data-wa-id="{CHRIS}"]').click()
    await page.wait_for_url(f"{base}/console/conversations/{CHRIS}")
    await page.click("#takeover")
    await page.locator("#owner-pill", has_text="You own this conversation").wait_for()

    banner = page.locator('[data-notice="marketing_opt_out"]')
    await banner.wait_for()
    assert "opted out of marketing" in (await banner.inner_text()).lower()

    await page.fill("#text-form textarea", "Hi Chris, I'm Ann. Let me check order A-1042 for you.")
    await page.click('#text-form button[type="submit"]')
    await page.locator(".msg-out", has_text="Let me check order A-1042").wait_for()

    # Pick a MARKETING template: the warning opens; cancel, and nothing is recorded.
    await page.click('.mode[data-mode="template"]')
    await page.select_option("#template-select", "spring_sale|en_US")
    dialog = page.locator("#optout-dialog")
    await dialog.wait_for(state="visible")
    assert "opted out of marketing" in (await page.inner_text("#optout-reason"))
    await page.click("#optout-cancel")
    await dialog.wait_for(state="hidden")
    await expect(page.locator("#template-select")).to_have_value("")
    await expect(page.locator("#template-params input")).to_have_count(0)
    assert [m["kind"] for m in await compose_rows(api)] == ["text"]

    # Pick it again and confirm: the parameters appear, and sending queues it.
    await page.select_option("#template-select", "spring_sale|en_US")
    await dialog.wait_for(state="visible")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-optout-warning.png"))
    await page.click("#optout-confirm")
    await dialog.wait_for(state="hidden")
    await page.locator("#confirmed-note").wait_for()
    await page.fill('#template-params input[data-index="1"]', "Chris")
    await page.fill('#template-params input[data-index="2"]', "20%")
    await page.click("#send-template")
    sent = page.locator(".msg-out", has_text="our spring sale is on")
    await sent.wait_for()
    await sent.locator(".msg-confirm", has_text="confirmed by Ann Lee").wait_for()

    rows = await compose_rows(api)
    assert [m["kind"] for m in rows] == ["text", "template"]
    assert rows[1]["template"]["name"] == "spring_sale"
    assert rows[1]["confirmed_opted_out"]["by"] == ANN

    # The sender posts it to the Cloud API (here the built-in simulator) ...
    async def in_the_simulator() -> list[dict[str, Any]]:
        listed = await (await api.get("/simulator/messages", params={"to": CHRIS})).json()
        return [m for m in listed["messages"] if m["type"] == "template" and m["wamid"]]

    [template] = await eventually(in_the_simulator, what="the template at the Cloud API")
    assert template["body"]["template"]["name"] == "spring_sale"
    assert template["body"]["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Chris"},
        {"type": "text", "text": "20%"},
    ]
    # ... and Meta's statuses come back through the webhook: the open page follows.
    read = page.locator(f'.msg[data-id="{rows[1]["id"]}"] .status-read')
    await read.wait_for()
    await expect(queue.locator('[data-wa-id="4915123456789"] .badge')).to_have_text("2")

    await page.screenshot(path=str(ARTIFACTS / "console-conversation.png"))

"""An agent's day in the console, in Debian's Chromium at a laptop's size (1366×800)
and a phone's (390×844), against the real server with its Cloud API simulator.

Ann signs in; a customer writes through the webhook and the queue shows it live (count
and page title); she takes the conversation over while Bob, signed in elsewhere, sees it
change hands live; she sends text with a link (double click and double Enter send once),
a utility template whose preview fills as she types, and a marketing template to a
contact who opted out (arrowing through the list asks nothing; choosing asks for the
confirmation); she opts the contact in with a note while her draft stays; she releases
the conversation and Bob's page follows. Every page is checked with axe-core (no serious
or critical violations). Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.ids import new_id
from engine.web.keys import STORE
from engine.whatsapp.signature import HEADER, sign
from tests.conftest import AUTH, ROOT, SAMPLE_PHONE_NUMBER_ID, make_app, make_settings
from tests.desk import PASSWORD, Client, add_agent, add_contact, messages_of, receive
from tests.inbound_support import text_notification
from tests.outbound_support import APP_SECRET, eventually
from tests.test_web_console_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    hand_off,
    require_chromium,
)

pytestmark = pytest.mark.browser

ANN = "ann@example.com"
BOB = "bob@example.com"
CHRIS = "16505551234"
DANA = "447911123456"
AXE_DIR = ROOT / ".cache" / "axe-core"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"laptop": (1366, 800), "phone": (390, 844)}


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core from the npm registry, installed once into the project's cache."""
    if not AXE.exists():
        try:
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(AXE_DIR),
                    "--no-audit",
                    "--no-fund",
                    "axe-core@4",
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError) as error:
            if os.environ.get("CI"):
                pytest.fail(f"axe-core could not be installed with npm: {error}")
            pytest.skip(f"axe-core could not be installed with npm: {error}")
    return AXE


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Any, size: tuple[int, int]) -> Any:
    # The console's CSP admits only its own scripts: axe is injected past it.
    context = await browser.new_context(
        viewport={"width": size[0], "height": size[1]}, bypass_csp=True
    )
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return page


async def sign_in(page: Any, base: str, email: str) -> None:
    await page.goto(f"{base}/console")
    await page.fill('input[name="email"]', email)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"{base}/console")


async def check_accessibility(page: Any, axe: Path, where: str) -> None:
    """axe-core inside the page: no serious or critical violation."""
    await page.add_script_tag(path=str(axe))
    violations = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    assert violations == [], f"{where}: {json.dumps(violations, indent=1)}"


async def customer_writes(
    api: Client,
    wa_id: str,
    text: str,
    clock: FrozenClock,
    *,
    phone_number_id: str = SAMPLE_PHONE_NUMBER_ID,
) -> None:
    """Meta's notification of a customer's text to one of the business numbers, signed
    as Meta signs it."""
    notification = text_notification(
        text, wamid=f"wamid.{new_id()}", sender=wa_id, sent_at=clock.now()
    )
    notification["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    raw = json.dumps(notification).encode()
    answer = await api.post("/webhook", data=raw, headers={HEADER: sign(raw, APP_SECRET)})
    assert answer.status == 200, await answer.text()


async def outbound_texts(api: Client, wa_id: str) -> list[str]:
    return [
        m.text or (m.template.name if m.template else "")
        for m in await messages_of(api.app[STORE], wa_id)
        if m.direction == "outbound"
    ]


@pytest.mark.parametrize("size", list(SIZES))
async def test_an_agents_day(
    aiohttp_server: Any,
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    browser: Any,
    axe_script: Path,
    size: str,
) -> None:
    from playwright.async_api import expect

    port = free_port()
    settings = make_settings(
        tmp_path,
        PORT=port,
        WA_APP_SECRET=APP_SECRET,
        OUTBOUND_WORKER=True,
        SIMULATOR_STATUS_DELAY_SECONDS=0.2,
    )
    app = make_app(settings, clock=clock)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1", port=port)
    api: Client = await aiohttp_client(server, headers=AUTH)
    store = app[STORE]
    await add_agent(api, ANN, name="Ann Lee")
    await add_agent(api, BOB, name="Bob Stone")
    await add_contact(api, CHRIS, opted_in=False, name="Chris Moreno")
    await add_contact(api, DANA, name="Dana Okafor")
    await receive(store, DANA, "What time do you open on Saturday?", clock.now())
    await hand_off(store, CHRIS)  # the bot handed Chris over before he writes again
    base = str(server.make_url("")).rstrip("/")
    phone = size == "phone"
    shots = ARTIFACTS / f"day-{size}"
    shots.mkdir(parents=True, exist_ok=True)

    ann = await new_page(browser, SIZES[size])
    await ann.goto(f"{base}/console/login")
    await check_accessibility(ann, axe_script, "sign-in page")
    await sign_in(ann, base, ANN)
    bob = await new_page(browser, SIZES["laptop"])
    await sign_in(bob, base, BOB)

    # A customer writes: Ann's queue shows it without a reload, with the title's count.
    await ann.click("#tab-queue")
    await customer_writes(
        api, CHRIS, "Hi, my jacket order A-1042 hasn't arrived. Can a person help?", clock
    )
    chris_item = ann.locator(f'#list-queue .conv-item[data-wa-id="{CHRIS}"]')
    await expect(chris_item.locator(".badge")).to_have_text("1")
    await expect(ann).to_have_title("(1) optinflow console")
    await check_accessibility(ann, axe_script, "the lists")
    await ann.screenshot(path=str(shots / "1-queue.png"))

    # Bob has the conversation open; Ann opens it and takes it over.
    await bob.goto(f"{base}/console/conversations/{CHRIS}")
    await chris_item.click()
    await ann.wait_for_url(f"**/conversations/{CHRIS}")
    if phone:
        await expect(ann.locator(".sidebar")).to_be_hidden()
        await expect(ann.locator(".back-link")).to_be_visible()
    await ann.click("#takeover")
    await expect(ann.locator("#owner-pill")).to_have_text("You own this conversation")
    await expect(bob.locator("#owner-pill")).to_contain_text("Owned by Ann Lee")
    await expect(ann.locator("#window-text")).to_contain_text(
        re.compile(r"open for 23 h \d+ min more")
    )

    # Text with a link; a double click and a double Enter still send once.
    area = ann.locator("#text-form textarea")
    await area.fill("Sorry about that! Track it at https://example.com/track/A-1042.")
    await ann.locator('#text-form button[type="submit"]').dblclick()
    link = ann.locator('.msg-out a.msg-link[href="https://example.com/track/A-1042"]')
    await expect(link).to_be_visible()
    await area.fill("It left our warehouse yesterday.")
    await area.press("Enter")
    await area.press("Enter")
    await expect(ann.locator(".msg-out", has_text="It left our warehouse")).to_have_count(1)
    await expect(bob.locator(".msg-out", has_text="It left our warehouse")).to_have_count(1)

    async def both_sent() -> bool:
        outbound = [
            m for m in await messages_of(api.app[STORE], CHRIS) if m.direction == "outbound"
        ]
        # At the Cloud API already: the failure below is for the next message only.
        return len(outbound) >= 2 and all(m.wamid for m in outbound)

    await eventually(both_sent, what="the two texts, once each")

    # Meta refuses one: it shows failed with the reason, and Retry sends it again.
    failure = {"to": CHRIS, "code": 131026, "times": 1}
    assert (await api.post("/simulator/failures", json=failure)).status == 201
    await area.fill("Can you confirm your address?")
    await area.press("Enter")
    failed = ann.locator(".msg-failed", has_text="Can you confirm your address?")
    await expect(failed.locator(".msg-failure")).to_contain_text("131026")
    await failed.locator(".retry").click()
    again = ann.locator(".msg-out:not(.msg-failed)", has_text="Can you confirm your address?")
    await expect(again.locator(".status-read")).to_have_count(1)
    texts = await outbound_texts(api, CHRIS)
    assert sum("Track it at" in t for t in texts) == 1, texts
    assert texts.count("It left our warehouse yesterday.") == 1, texts

    # A utility template: friendly names, and a preview that fills as she types.
    await ann.click('.mode[data-mode="template"]')
    await ann.select_option("#template-select", "order_update|en_US")
    await expect(ann.locator("#optout-dialog")).not_to_be_visible()
    await ann.fill('#template-params input[data-index="1"]', "A-1042")
    await ann.fill('#template-params input[data-index="2"]', "on its way")
    await expect(ann.locator("#tp-body")).to_have_text("Your order A-1042 is on its way.")
    await ann.click("#send-template")
    await expect(ann.locator(".msg-out", has_text="Template · order_update")).to_have_count(1)

    # Arrowing through the list past a marketing template asks nothing ...
    await ann.select_option("#template-select", "")
    await ann.focus("#template-select")
    for _ in range(3):  # both marketing templates, then a utility one
        await ann.keyboard.press("ArrowDown")
        await expect(ann.locator("#optout-dialog")).not_to_be_visible()
    await expect(ann.locator("#template-select")).to_have_value("opt_in_confirmation|en_US")
    # ... choosing one asks; cancelling records nothing, confirming shows it whole.
    await ann.select_option("#template-select", "spring_sale|en_US")
    await expect(ann.locator("#optout-dialog")).to_be_visible()
    await ann.screenshot(path=str(shots / "2-opted-out-warning.png"))
    await check_accessibility(ann, axe_script, "the opted-out warning")
    await ann.click("#optout-cancel")
    await expect(ann.locator("#template-select")).to_have_value("")
    await ann.select_option("#template-select", "spring_sale|en_US")
    await ann.click("#optout-confirm")
    await expect(ann.locator("#tp-header")).to_have_text("Spring sale")
    await expect(ann.locator("#tp-footer")).to_have_text("Reply STOP to opt out")
    await expect(ann.locator("#tp-buttons li")).to_have_text(["Shop now", "Stop promotions"])
    await ann.fill('#template-params input[data-index="1"]', "Chris")
    await ann.fill('#template-params input[data-index="2"]', "20%")
    await expect(ann.locator("#tp-body")).to_contain_text(
        "Hi Chris, our spring sale is on: 20% off"
    )
    await ann.screenshot(path=str(shots / "3-template-preview.png"))
    await ann.click("#send-template")
    sent = ann.locator(".msg-out", has_text="Template · spring_sale")
    await expect(sent.locator(".msg-confirm")).to_contain_text("confirmed by Ann Lee")

    # The opt-in switch: confirmation with a note, no reload, the draft stays.
    await ann.click('.mode[data-mode="text"]')
    await area.fill("A draft she is still writing")
    if phone:  # the contact panel opens over the conversation
        await ann.click("#contact-toggle")
    await ann.click("[data-consent-change]")
    dialog = ann.locator("[data-consent-dialog]")
    await expect(dialog).to_be_visible()
    await check_accessibility(ann, axe_script, "the consent dialog")
    await dialog.locator("[data-consent-note]").fill("Asked for offers on the phone")
    await dialog.locator("[data-consent-confirm]").click()
    newest = ann.locator("[data-consent-list] li").first
    await expect(newest.locator(".consent-source")).to_have_text("agent Ann Lee")
    await expect(newest.locator(".consent-note")).to_have_text("Asked for offers on the phone")
    await expect(ann.locator("[data-consent-state]")).to_have_text("Opted in")
    await expect(area).to_have_value("A draft she is still writing")
    await expect(ann.locator('[data-notice="marketing_opt_out"]')).to_be_hidden()
    contact = await (await api.get(f"/api/v1/contacts/{CHRIS}")).json()
    assert contact["marketing_opt_in"] is True
    if phone:
        await ann.screenshot(path=str(shots / "3b-consent.png"))
        await ann.click("#contact-close")
        await expect(ann.locator("#contact-panel")).to_be_hidden()

    # The customer answers while she reads back: a marker says so.
    timeline = ann.locator("#timeline")
    scrolled = await timeline.evaluate(
        "t => { t.scrollTop = 0; return t.scrollHeight > t.clientHeight + 40; }"
    )
    await customer_writes(api, CHRIS, "Thanks, that helps!", clock)
    if scrolled:
        await expect(ann.locator("#new-marker")).to_be_visible()
        await ann.click("#new-marker")
        await expect(ann.locator("#new-marker")).to_be_hidden()
    await expect(ann.locator(".msg-in", has_text="Thanks, that helps!")).to_be_visible()
    await expect(bob.locator(".msg-in", has_text="Thanks, that helps!")).to_be_visible()
    await check_accessibility(ann, axe_script, "the conversation")
    await ann.screenshot(path=str(shots / "4-conversation.png"))

    # Release: Bob's page follows live.
    await ann.click("#release")
    await expect(ann.locator("#owner-pill")).to_have_text("Bot is answering")
    await expect(bob.locator("#owner-pill")).to_have_text("Bot is answering")
    if phone:
        await ann.click(".back-link")
        await expect(ann.locator(".sidebar")).to_be_visible()
        await ann.screenshot(path=str(shots / "5-back-to-the-list.png"))


SUPPORT = "106540352242923"
"""A second business number (the first is the configured one, +1 555-078-3881)."""


async def ends_inside_the_page(page: Any, selector: str) -> bool:
    """The element ends within the page's width, and the page does not scroll sideways."""
    return bool(
        await page.evaluate(
            """s => { const root = document.documentElement, width = root.clientWidth;
                      const box = document.querySelector(s).getBoundingClientRect();
                      return box.right <= width && root.scrollWidth <= width; }""",
            selector,
        )
    )


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_business_number_a_conversation_is_on_shows_and_follows_live(
    aiohttp_server: Any,
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    browser: Any,
    axe_script: Path,
    size: str,
) -> None:
    from playwright.async_api import expect

    port = free_port()
    settings = make_settings(tmp_path, PORT=port, WA_APP_SECRET=APP_SECRET)
    app = make_app(settings, clock=clock)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1", port=port)
    api: Client = await aiohttp_client(server, headers=AUTH)
    registered = await api.post(
        "/api/v1/numbers",
        json={"phone_number_id": SUPPORT, "display_phone_number": "+1 555-078-3884"},
    )
    assert registered.status == 201, await registered.text()
    await add_agent(api, ANN, name="Ann Lee")
    await add_contact(api, CHRIS, name="Chris Moreno")
    await add_contact(api, DANA, name="Dana Okafor")
    await customer_writes(api, DANA, "Is my refund through?", clock, phone_number_id=SUPPORT)
    base = str(server.make_url("")).rstrip("/")
    shots = ARTIFACTS / f"numbers-{size}"
    shots.mkdir(parents=True, exist_ok=True)

    ann = await new_page(browser, SIZES[size])
    await sign_in(ann, base, ANN)
    await ann.click("#tab-bot")
    dana = ann.locator(f'#list-bot .conv-item[data-wa-id="{DANA}"]')
    await expect(dana.locator(".conv-number")).to_have_text("To +1 555-078-3884")

    # A customer writes to the support number: the row added live says so.
    clock.advance(seconds=30)
    await customer_writes(
        api, CHRIS, "Hi, my jacket order hasn't arrived.", clock, phone_number_id=SUPPORT
    )
    chris = ann.locator(f'.conv-item[data-wa-id="{CHRIS}"]')
    await expect(chris.locator(".conv-number")).to_have_text("To +1 555-078-3884")
    assert await ends_inside_the_page(ann, f'.conv-item[data-wa-id="{CHRIS}"] .conv-number')
    await check_accessibility(ann, axe_script, "the lists with business numbers")
    await ann.screenshot(path=str(shots / "1-lists.png"))

    await chris.click()
    await ann.wait_for_url(f"**/conversations/{CHRIS}")
    header = ann.locator("#conv-number")
    await expect(header).to_be_visible()
    await expect(header).to_have_text("To +1 555-078-3884")
    assert await ends_inside_the_page(ann, "#conv-number")

    # The customer writes to the first number while the page is open: the agents now
    # answer from it, and the header and the row (shown or not) follow.
    clock.advance(seconds=30)
    await customer_writes(api, CHRIS, "Also, do you have it in blue?", clock)
    await expect(ann.locator(".msg-in", has_text="do you have it in blue?")).to_be_visible()
    await expect(header).to_have_text("To +1 555-078-3881")
    await expect(chris.locator(".conv-number")).to_have_text("To +1 555-078-3881")
    assert await ends_inside_the_page(ann, "#conv-number")
    await check_accessibility(ann, axe_script, "a conversation with its business number")
    await ann.screenshot(path=str(shots / "2-conversation.png"))

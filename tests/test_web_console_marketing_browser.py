"""The marketers' console in a real browser: Debian's Chromium driven by Playwright
against the real server on loopback, with the built-in Cloud API simulator delivering
statuses through the signed webhook. Run at a laptop's 1366×800 and a phone's 390×844.

A marketer imports a CSV of 1,000 contacts of whom 10 opted out of marketing, makes a
MARKETING broadcast and sees 1,000 selected, 10 opted out and 990 to receive with the
opt-in checkbox on; unchecks it, sees the quality-rating warning and cannot create
until they acknowledge it; sends, watches the counts move on the open page, and
downloads the report. Then they build a two-step sequence whose first step is a
MARKETING template, enrol an opted-in and an opted-out contact by CSV upload, and see
the opted-out contact's first step fail (``marketing_opt_out``) and their second step
sent on schedule. Screenshots go to ``artifacts/``; the 1366×800 form is also the
README's picture (docs/marketers-console.png), rewritten only when
OPTINFLOW_UPDATE_DOCS_PICTURES is set.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.web.keys import CALLBACKS, CAMPAIGNS, SENDER
from tests.conftest import AUTH, ROOT, make_app, make_settings
from tests.desk import PASSWORD, Client, add_agent
from tests.outbound_support import APP_SECRET
from tests.test_web_console_browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "artifacts"
DOCS_PICTURE = ROOT / "docs" / "marketers-console.png"
MARK = "mark@example.com"
VIEWPORTS = {"laptop": (1366, 800), "phone": (390, 844)}
CONTACTS = 1000
OPTED_OUT = {index * 97 + 5 for index in range(10)}  # ten contacts who said no
WAIT_MS = 30_000
DONE = ("sent", "delivered", "read")


def number(index: int) -> str:
    return f"1650555{index:04d}"


def contacts_csv() -> bytes:
    lines = ["phone,name,marketing_opt_in,tags"]
    for index in range(CONTACTS):
        opted = "no" if index in OPTED_OUT else "yes"
        lines.append(f"+1 650 555 {index:04d},Customer {index},{opted},spring")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(params=sorted(VIEWPORTS))
async def viewport(request: pytest.FixtureRequest) -> tuple[str, tuple[int, int]]:
    return request.param, VIEWPORTS[request.param]


@pytest.fixture
async def page(viewport: tuple[str, tuple[int, int]]) -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    width, height = viewport[1]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": height}, accept_downloads=True
            )
            opened = await context.new_page()
            opened.set_default_timeout(WAIT_MS)
            yield opened
        finally:
            await browser.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")


async def test_a_marketer_runs_a_broadcast_and_a_sequence_in_the_browser(
    aiohttp_server: Any,
    aiohttp_client: Any,
    tmp_path: Path,
    clock: FrozenClock,
    page: Any,
    viewport: tuple[str, tuple[int, int]],
) -> None:
    from playwright.async_api import expect

    name = viewport[0]
    port = free_port()
    settings = make_settings(
        tmp_path,
        PORT=port,
        WA_APP_SECRET=APP_SECRET,
        OUTBOUND_WORKER=True,
        OUTBOUND_RATE_LIMIT=1000,
        OUTBOUND_POLL_SECONDS=0.02,
        CAMPAIGN_POLL_SECONDS=0.05,
        SIMULATOR_STATUS_DELAY_SECONDS=0.3,  # counts a person can watch move
        BUSINESS_TIMEZONE="Europe/Madrid",
    )
    app = make_app(settings, clock=clock)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1", port=port)
    api: Client = await aiohttp_client(server, headers=AUTH)
    await add_agent(api, MARK, name="Mara Marketer", role="marketer")
    base = str(server.make_url(""))
    ARTIFACTS.mkdir(exist_ok=True)

    async def shot(label: str) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"marketers-{name}-{label}.png"))

    # Sign in: a marketer lands on the broadcasts.
    await page.goto(f"{base}/console")
    await page.fill('input[name="email"]', MARK)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"{base}/console/broadcasts")
    nav = page.locator(".section-nav .section-link")
    await expect(nav).to_have_text(["Contacts", "Broadcasts", "Sequences", "Reports"])

    # Import 1,000 contacts, 10 of whom opted out.
    await nav.filter(has_text="Contacts").click()
    await page.wait_for_url(f"{base}/console/contacts")
    await page.set_input_files(
        "#import-file",
        files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": contacts_csv()}],
    )
    await page.click("#import-button")
    await expect(page.locator("#import-result")).to_contain_text("1,000 created")
    await shot("contacts-imported")
    await page.select_option('select[name="opt_in"]', "no")
    await page.click('.filters button[type="submit"]')
    await expect(page.locator(".contacts-table tbody tr")).to_have_count(10)

    # A MARKETING broadcast to the tag: 1,000 selected, 10 opted out, 990 to receive.
    await page.goto(f"{base}/console/broadcasts/new")
    await page.fill("#name", "Spring sale")
    await page.fill("#tags", "spring")
    await page.select_option("#template-select", "spring_sale|en_US")
    await page.fill('#template-params input[data-index="1"]', "friend")
    await page.fill('#template-params input[data-index="2"]', "20%")
    checkbox = page.get_by_label("Send message to contacts who opted-in for marketing")
    await expect(checkbox).to_be_checked()
    await expect(page.locator("#count-total")).to_have_text("1,000")
    await expect(page.locator("#count-opted-out")).to_have_text("10")
    await expect(page.locator("#count-will-send")).to_have_text("990")
    await expect(page.locator("#quality-warning")).to_be_hidden()
    await expect(page.locator("#create-broadcast")).to_be_enabled()
    await page.locator("#opt-in-box").scroll_into_view_if_needed()
    await shot("broadcast-form")
    if name == "laptop" and os.environ.get("OPTINFLOW_UPDATE_DOCS_PICTURES"):
        # Only on request: a test run leaves the repository as it found it.
        await page.screenshot(path=str(DOCS_PICTURE))

    # Unchecked: the warning, and Create waits for the acknowledgement.
    await checkbox.uncheck()
    warning = page.locator("#quality-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("may lower your number's quality rating")
    await expect(page.locator("#count-will-send")).to_have_text("1,000")
    await expect(page.locator("#create-broadcast")).to_be_disabled()
    await shot("broadcast-warning")
    await page.check("#acknowledge")
    await expect(page.locator("#create-broadcast")).to_be_enabled()
    await page.click("#create-broadcast")
    await page.wait_for_url(f"{base}/console/broadcasts/*")
    broadcast_id = page.url.rsplit("/", 1)[1]
    listed = await (await api.get("/api/v1/broadcasts")).json()
    assert [b["id"] for b in listed["broadcasts"]] == [broadcast_id]
    assert listed["broadcasts"][0]["opted_in_only"] is False

    # The counts move on the open page, streamed, until all 1,000 are read.
    await page.evaluate("window.stillTheSamePage = true")
    card = page.locator(f'.broadcast-card[data-broadcast="{broadcast_id}"]')
    read = card.locator('[data-count="read"] .count-n')
    seen: set[str] = set()

    async def all_read() -> bool:
        seen.add(await read.inner_text())
        return "1,000" in seen

    await until(all_read, "1,000 read on the broadcast's page", within=180)
    assert len(seen) > 2, f"the read count jumped straight to the end: {seen}"
    assert await page.evaluate("window.stillTheSamePage === true")  # no reload
    await expect(card.locator("[data-state]")).to_have_text(re.compile("completed", re.I))
    await shot("broadcast-done")

    async with page.expect_download() as downloading:
        await page.click("#download-report")
    download = await downloading.value
    saved = await download.path()
    rows = list(csv.DictReader(io.StringIO(await asyncio.to_thread(Path(saved).read_text))))
    assert len(rows) == CONTACTS
    assert {row["status"] for row in rows} == {"read"}

    # A two-step sequence: a MARKETING template, then a utility template an hour later.
    await page.goto(f"{base}/console/sequences/new")
    await page.fill("#sequence-name", "Welcome")
    first = page.locator('.step-row[data-step="0"]')
    await first.locator('input[name="step_0_delay"]').fill("0s")
    await first.locator("[data-step-template]").select_option("new_arrivals|en_US")
    await first.locator('input[name="step_0_param"]').fill("friend")
    await expect(first.locator("[data-marketing-note]")).to_contain_text(
        "contacts who opted out of marketing will fail this step and move on"
    )
    await page.click("#add-step")
    second = page.locator('.step-row[data-step="1"]')
    await second.locator('input[name="step_1_delay"]').fill("1h")
    await second.locator("[data-step-template]").select_option("order_update|en_US")
    await second.locator('input[name="step_1_param"]').first.fill("A-1")
    await second.locator('input[name="step_1_param"]').nth(1).fill("ready")
    await expect(second.locator("[data-marketing-note]")).to_be_hidden()
    await shot("sequence-builder")
    await page.click("#save-sequence")
    await page.wait_for_url(f"{base}/console/sequences/*")
    sequence_page = page.url

    said_no, said_yes = number(min(OPTED_OUT)), number(0)
    await page.set_input_files(
        "#enrol-file",
        files=[
            {
                "name": "enrol.csv",
                "mimeType": "text/csv",
                "buffer": f"phone\n{said_no}\n{said_yes}\n".encode(),
            }
        ],
    )
    await page.click("#enrol-csv-button")
    await expect(page.locator("#enrol-result")).to_contain_text("2 enrolled")

    def tick(**delta: float) -> None:
        """Time moves on (the frozen clock refills the number's send rate too)."""
        clock.advance(**delta)
        for worker in (app[CAMPAIGNS], app[SENDER], app[CALLBACKS]):
            worker.wake()

    tick(seconds=5)

    async def step_shows(wa_id: str, step: int, *texts: str) -> bool:
        await page.goto(sequence_page)
        cell = page.locator(f'tr[data-wa-id="{wa_id}"] td[data-step="{step}"]')
        shown = (await cell.inner_text()).lower()  # states are shown capitalised
        return any(text in shown for text in texts)

    await until(lambda: step_shows(said_no, 0, "marketing_opt_out"), "the first step to fail")
    await until(lambda: step_shows(said_yes, 0, *DONE), "the first step to be sent")
    failed = page.locator(f'tr[data-wa-id="{said_no}"] td[data-step="0"]')
    await expect(failed).to_contain_text("opted out of marketing")
    await expect(failed).to_contain_text(re.compile("failed", re.I))
    await expect(page.locator(f'tr[data-wa-id="{said_no}"] td[data-step="1"]')).to_contain_text(
        re.compile("pending", re.I)
    )
    tick(hours=1)
    await until(lambda: step_shows(said_no, 1, *DONE), "the opted-out contact's second step")
    await expect(page.locator(f'tr[data-wa-id="{said_no}"] td:nth-child(2)')).to_have_text(
        "completed"
    )
    await shot("sequence-enrolments")

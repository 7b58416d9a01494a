"""The desk's day in a real browser (Debian's Chromium driven by Playwright against the
real server and its Cloud API simulator on loopback), at a laptop's 1366×800 and a
phone's 390×844: a customer's image, location and document shown inline; the agent
sends an image, writes a private note, inserts a saved reply with "/", assigns the
conversation to a colleague, then finds a contact who never wrote and sends them a
template. Screenshots go to ``artifacts/``."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.devtools.customer import media_notification, text_notification
from engine.devtools.simulator import SIMULATOR, Received, Simulator
from engine.store import Tx
from engine.web.keys import STORE
from engine.whatsapp.signature import HEADER, sign
from tests.conftest import AUTH, SAMPLE_PHONE_NUMBER_ID, make_app, make_settings
from tests.desk import PASSWORD, Client, add_agent, add_contact, messages_of
from tests.outbound_support import APP_SECRET, eventually
from tests.test_web_console_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = pytest.mark.browser

ANN, BOB, CLEO = "ann@example.com", "bob@example.com", "cleo@example.com"
CHRIS, DANA = "16505551234", "447911123456"
PHONE_NUMBER_ID = SAMPLE_PHONE_NUMBER_ID  # the business number this server has: opens the window


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, so the browser decodes it and the test sees it drawn."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PHOTO = png(240, 160, (15, 118, 110))
LABEL = png(160, 100, (240, 180, 41))
SIZES = {"laptop": (1366, 800), "phone": (390, 844)}


async def notify(api: Client, note: dict[str, Any]) -> None:
    raw = json.dumps(note).encode()
    answer = await api.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, APP_SECRET)},
    )
    assert answer.status == 200, await answer.text()


def customer(kind: str, detail: Any, wamid: str, at: float) -> dict[str, Any]:
    note = text_notification("", sender=CHRIS, name="Chris", phone_number_id=PHONE_NUMBER_ID, at=at)
    message = note["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update({"type": kind, kind: detail, "id": wamid})
    return note


async def seed(api: Client, simulator: Simulator, clock: FrozenClock) -> None:
    await add_agent(api, ANN, name="Ann Lee")
    await add_agent(api, BOB, name="Bob Stone")
    await add_agent(api, CLEO, name="Cleo Admin", role="admin")
    await add_contact(api, CHRIS, name="Chris Moreno")
    await add_contact(api, DANA, name="Dana Okafor")
    saved = await api.put(
        "/api/v1/saved-replies/thanks",
        json={"agent": CLEO, "text": "Thanks for waiting, I'm on it!"},
    )
    assert saved.status == 200
    now = clock.now().timestamp()  # the customer writes at the server's time
    photo = simulator.add_media(PHOTO, mime_type="image/png", filename=None)
    invoice = simulator.add_media(b"%PDF-1.4", mime_type="application/pdf", filename=None)
    await notify(
        api,
        media_notification(
            "image",
            {"id": photo.id, "mime_type": "image/png", "sha256": photo.sha256},
            sender=CHRIS,
            name="Chris",
            phone_number_id=PHONE_NUMBER_ID,
            caption="the broken zip",
            at=now,
        ),
    )
    await notify(
        api,
        customer(
            "location",
            {
                "latitude": 52.52,
                "longitude": 13.405,
                "name": "Shop Mitte",
                "address": "Torstr. 1, Berlin",
            },
            "wamid.loc",
            now,
        ),
    )
    await notify(
        api,
        media_notification(
            "document",
            {"id": invoice.id, "mime_type": "application/pdf", "sha256": invoice.sha256},
            sender=CHRIS,
            name="Chris",
            phone_number_id=PHONE_NUMBER_ID,
            filename="invoice-A-1042.pdf",
            at=now,
        ),
    )

    async def stored() -> bool:
        return len(await messages_of(api.app[STORE], CHRIS)) >= 3

    await eventually(stored, what="the customer's three messages")


@pytest.mark.parametrize("size", list(SIZES))
async def test_an_agents_day_with_media_notes_saved_replies_assignment_and_search(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, size: str
) -> None:
    require_chromium()
    from playwright.async_api import FilePayload, async_playwright, expect

    port = free_port()
    settings = make_settings(
        tmp_path,
        PORT=port,
        WA_APP_SECRET=APP_SECRET,
        OUTBOUND_WORKER=True,
        SIMULATOR_STATUS_DELAY_SECONDS=0.05,
    )
    app = make_app(settings, clock=clock)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1", port=port)
    api: Client = await aiohttp_client(server, headers=AUTH)
    simulator: Simulator = app[SIMULATOR]
    await seed(api, simulator, clock)

    async def hand_over(tx: Tx) -> None:  # the bot's flow handed Chris to the agents
        contact = await tx.contacts.get(CHRIS)
        assert contact is not None
        await tx.flow_sessions.record_handoff(contact.id, "support", None, None, clock.now())

    await app[STORE].write(hand_over)
    base = str(server.make_url(""))
    ARTIFACTS.mkdir(exist_ok=True)
    width, height = SIZES[size]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = await context.new_page()
            page.set_default_timeout(10_000)

            await page.goto(f"{base}/console/conversations/{CHRIS}")
            await page.fill('input[name="email"]', ANN)
            await page.fill('input[name="password"]', PASSWORD)
            await page.click('button[type="submit"]')
            await page.wait_for_url(f"{base}/console/conversations/{CHRIS}")
            if size == "phone" and not await page.locator(".back-link").count():
                pytest.skip("this console has no phone layout (one column, a way back) yet")

            # What the customer sent, inline.
            image = page.locator(".msg-in img.media-image")
            await image.wait_for()
            await page.wait_for_function(
                "() => { const i = document.querySelector('.msg-in img.media-image');"
                " return i && i.complete && i.naturalWidth === 240; }"
            )
            await expect(page.locator(".msg-in .media-caption")).to_have_text("the broken zip")
            place = page.locator(".media-location")
            await expect(place).to_contain_text("Shop Mitte")
            await expect(place).to_contain_text("Torstr. 1, Berlin")
            href = await place.locator("a").get_attribute("href")
            assert href is not None
            assert href.startswith("https://www.openstreetmap.org/?mlat=52.52&mlon=13.405")
            await expect(page.locator(".media-filename")).to_have_text("invoice-A-1042.pdf")
            await page.screenshot(path=str(ARTIFACTS / f"desk-inbound-media-{size}.png"))

            await page.click("#takeover")
            await page.locator("#owner-pill", has_text="You own this conversation").wait_for()

            # Send an image.
            await page.set_input_files(
                "#media-file",
                files=[FilePayload(name="label.png", mimeType="image/png", buffer=LABEL)],
            )
            await page.fill("#media-caption", "your return label")
            await page.click("#media-send")
            await page.locator(".msg-out img.media-image").wait_for()

            async def image_sent() -> list[Received]:
                return [r for r in simulator.received(CHRIS) if r.type == "image" and r.wamid]

            await eventually(image_sent, what="the image at the Cloud API")

            # A private note.
            await page.fill("#note-text", "VIP customer: offer free shipping")
            await page.click("#note-submit")
            await page.locator(".desk-note", has_text="VIP customer").wait_for()
            assert all(b"VIP" not in r.raw for r in simulator.received())

            # A saved reply with "/", by keyboard.
            box = page.locator("#text-form textarea")
            await box.click()
            await box.press_sequentially("/tha")
            option = page.locator(".saved-reply-option", has_text="/thanks")
            await option.wait_for()
            await page.screenshot(path=str(ARTIFACTS / f"desk-saved-reply-{size}.png"))
            await box.press("Enter")
            await expect(box).to_have_value("Thanks for waiting, I'm on it!")
            await box.press("Enter")
            await page.locator(".msg-out", has_text="Thanks for waiting, I'm on it!").wait_for()
            await page.screenshot(path=str(ARTIFACTS / f"desk-note-and-media-{size}.png"))

            # Chris asked for a person: releasing to the bot asks first; keep it.
            await page.click("#release")
            release = page.locator("#release-dialog")
            await release.wait_for(state="visible")
            await page.screenshot(path=str(ARTIFACTS / f"desk-release-confirm-{size}.png"))
            await page.click("#release-cancel")
            await release.wait_for(state="hidden")
            await expect(page.locator("#owner-pill")).to_have_text("You own this conversation")

            # Hand it to a colleague, with a note (on a phone, from the drawer).
            drawer = page.locator("#desk-drawer")
            if await drawer.is_visible():
                await drawer.locator("summary").click()
            await page.select_option("#assign-to", BOB)
            await page.fill("#assign-note", "refund please")
            await page.click("#assign-submit")
            await page.locator("#owner-pill", has_text="Owned by Bob Stone").wait_for()
            await page.locator(
                ".desk-assigned", has_text="Ann Lee assigned this to Bob Stone: “refund please”"
            ).wait_for()
            await page.screenshot(path=str(ARTIFACTS / f"desk-assigned-{size}.png"))

            # Find a contact who never wrote, open them, send a template (on a phone, the
            # search is on the list: back to it first).
            back = page.locator(".back-link")
            if await back.count() and await back.is_visible():
                await back.click()
                await page.wait_for_url(f"{base}/console")
            await page.fill("#desk-search-input", "okafor")
            hit = page.locator(".search-hit", has_text="Dana Okafor")
            await hit.click()
            await page.wait_for_url(f"{base}/console/conversations/{DANA}")
            await expect(page.locator("#window-text")).to_contain_text("has not written yet")
            await page.click("#takeover")
            await page.locator("#owner-pill", has_text="You own this conversation").wait_for()
            await expect(page.locator("#text-form")).to_be_hidden()
            await page.select_option("#template-select", "order_update|en_US")
            await page.fill('#template-params input[data-index="1"]', "A-1042")
            await page.fill('#template-params input[data-index="2"]', "on its way")
            await page.click("#send-template")
            await page.locator(".msg-out", has_text="Template · order_update").wait_for()
            await page.screenshot(path=str(ARTIFACTS / f"desk-template-to-new-contact-{size}.png"))
        finally:
            await browser.close()


async def test_a_colleagues_image_note_resolve_and_assignment_appear_live(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    require_chromium()
    from playwright.async_api import FilePayload, Page, async_playwright, expect

    port = free_port()
    settings = make_settings(tmp_path, PORT=port, WA_APP_SECRET=APP_SECRET, OUTBOUND_WORKER=True)
    app = make_app(settings, clock=clock)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1", port=port)
    api: Client = await aiohttp_client(server, headers=AUTH)
    await seed(api, app[SIMULATOR], clock)
    base = str(server.make_url(""))
    width, height = SIZES["laptop"]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:

            async def signed_in(email: str) -> Page:
                context = await browser.new_context(viewport={"width": width, "height": height})
                page = await context.new_page()
                page.set_default_timeout(10_000)
                await page.goto(f"{base}/console/conversations/{CHRIS}")
                await page.fill('input[name="email"]', email)
                await page.fill('input[name="password"]', PASSWORD)
                await page.click('button[type="submit"]')
                await page.wait_for_url(f"{base}/console/conversations/{CHRIS}")
                await page.locator(".msg-in img.media-image").wait_for()
                return page

            ann, bob = await signed_in(ANN), await signed_in(BOB)
            await bob.evaluate("() => { window.stillThisPage = true; }")

            await ann.click("#takeover")
            await ann.locator("#owner-pill", has_text="You own this conversation").wait_for()
            await ann.set_input_files(
                "#media-file",
                files=[FilePayload(name="label.png", mimeType="image/png", buffer=LABEL)],
            )
            await ann.click("#media-send")
            await ann.locator(".msg-out img.media-image").wait_for()
            # Bob's page shows Ann's image as an image, not as "[image]".
            await bob.wait_for_function(
                "() => { const i = document.querySelector('.msg-out img.media-image');"
                " return i && i.complete && i.naturalWidth === 160; }"
            )

            await expect(bob.locator("#assignee-state")).to_have_text("Assigned to Ann Lee")

            # Ann's private note and her resolving it appear on Bob's page as they happen;
            # on Ann's own page the note shows once (her answer, then the live update).
            await ann.evaluate(
                "() => { window.liveEntries = 0; document.addEventListener('deskentry',"
                " () => { window.liveEntries += 1; }); }"
            )
            await ann.fill("#note-text", "VIP customer: offer free shipping")
            await ann.click("#note-submit")
            await bob.locator(".desk-note", has_text="VIP customer: offer free shipping").wait_for()
            await ann.wait_for_function("() => window.liveEntries >= 1")
            await expect(ann.locator(".desk-note")).to_have_count(1)
            await expect(bob.locator(".desk-note")).to_have_count(1)
            await ann.click("#resolve-toggle")
            await expect(bob.locator("#resolved-state")).to_have_text("Resolved")
            await bob.locator(".desk-resolved", has_text="Ann Lee marked this resolved").wait_for()
            await expect(bob.locator("#resolve-toggle")).to_have_text("Reopen")

            await ann.select_option("#assign-to", BOB)
            await ann.fill("#assign-note", "refund please")
            await ann.click("#assign-submit")
            await bob.locator(
                ".desk-assigned", has_text="Ann Lee assigned this to Bob Stone: “refund please”"
            ).wait_for()
            await expect(bob.locator("#resolved-state")).to_have_text("Open")
            await expect(bob.locator("#assignee-state")).to_have_text("Assigned to Bob Stone")
            await expect(bob.locator(".desk-entry")).to_have_count(3)
            assert await bob.evaluate("() => window.stillThisPage === true"), "Bob's page reloaded"
        finally:
            await browser.close()

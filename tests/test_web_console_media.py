"""Media in the agents' console, against the real server and its built-in Cloud API
simulator on loopback: what customers send is shown inline (images, documents,
locations, contact cards, reactions on their message), the files are served to
signed-in agents only, and an agent sends an image inside the 24-hour window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from engine.clock import FrozenClock
from engine.devtools.customer import media_notification, text_notification
from engine.devtools.simulator import SIMULATOR, Simulator
from engine.whatsapp.signature import HEADER, sign
from tests.desk import add_contact, messages_of, receive, store_of
from tests.outbound_support import APP_SECRET, Outbound, eventually, start_outbound
from tests.test_web_console import ANN, signed_in

WA = "16505551234"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def notify(client: TestClient[Any, Any], note: dict[str, Any]) -> None:
    raw = json.dumps(note).encode()
    response = await client.post(
        "/webhook",
        data=raw,
        headers={"Content-Type": "application/json", HEADER: sign(raw, APP_SECRET)},
    )
    assert response.status == 200, await response.text()


def customer_message(kind: str, detail: Any, wamid: str) -> dict[str, Any]:
    note = text_notification("", sender=WA, name="Chris", phone_number_id="100000000000001")
    message = note["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update({"type": kind, kind: detail, "id": wamid})
    return note


async def test_what_a_customer_sends_is_shown_inline_and_served_to_agents_only(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    server = await start_outbound(aiohttp_client, tmp_path, clock)
    client = server.client
    await add_contact(client, WA, name="Chris")
    await signed_in(client, ANN, name="Ann Lee")
    simulator: Simulator = client.app[SIMULATOR]
    photo = simulator.add_media(PNG, mime_type="image/png", filename=None)
    invoice = simulator.add_media(b"%PDF-1.4", mime_type="application/pdf", filename="a.pdf")

    image = media_notification(
        "image",
        {"id": photo.id, "mime_type": "image/png", "sha256": photo.sha256},
        sender=WA,
        name="Chris",
        phone_number_id="100000000000001",
        caption="the broken zip",
    )
    image_wamid = image["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    await notify(client, image)
    await notify(
        client,
        media_notification(
            "document",
            {"id": invoice.id, "mime_type": "application/pdf", "sha256": invoice.sha256},
            sender=WA,
            name="Chris",
            phone_number_id="100000000000001",
            filename="invoice-A-1042.pdf",
        ),
    )
    place = {
        "latitude": 52.52,
        "longitude": 13.405,
        "name": "Shop Mitte",
        "address": "Torstr. 1, Berlin",
    }
    await notify(client, customer_message("location", place, "wamid.loc"))
    card = [
        {
            "name": {"formatted_name": "Dana Okafor", "first_name": "Dana"},
            "phones": [{"phone": "+44 7911 123456", "type": "CELL"}],
        }
    ]
    await notify(client, customer_message("contacts", card, "wamid.card"))
    reaction = {"message_id": image_wamid, "emoji": "\N{THUMBS UP SIGN}"}
    await notify(client, customer_message("reaction", reaction, "wamid.react"))

    async def all_stored() -> list[Any]:
        stored = await messages_of(store_of(client), WA)
        return stored if len([m for m in stored if m.direction == "inbound"]) == 5 else []

    stored = {m.kind: m for m in await eventually(all_stored, what="the five messages")}
    answer = await client.get(f"/console/api/conversations/{WA}/extras")
    assert answer.status == 200
    extras = await answer.json()

    shown = extras["bodies"][stored["image"].id]
    assert f'<img class="media-image" src="/console/media/{photo.id}"' in shown
    assert "the broken zip" in shown
    document = extras["bodies"][stored["document"].id]
    assert f'href="/console/media/{invoice.id}"' in document
    assert "invoice-A-1042.pdf" in document
    location = extras["bodies"][stored["location"].id]
    assert "Shop Mitte" in location
    assert "Torstr. 1, Berlin" in location
    assert "https://www.openstreetmap.org/?mlat=52.52&amp;mlon=13.405" in location
    contacts = extras["bodies"][stored["contacts"].id]
    assert "Dana Okafor" in contacts
    assert 'href="tel:+447911123456"' in contacts
    assert extras["reactions"] == {stored["image"].id: "\N{THUMBS UP SIGN}"}
    assert extras["hidden"] == [stored["reaction"].id], "shown on the message, not alone"

    file = await client.get(f"/console/media/{photo.id}")
    assert file.status == 200
    assert await file.read() == PNG
    assert file.headers["Content-Type"] == "image/png"
    assert "sandbox" in file.headers["Content-Security-Policy"]
    assert file.headers["Content-Disposition"] == "inline"
    pdf = await client.get(f"/console/media/{invoice.id}")
    assert pdf.headers["Content-Disposition"].startswith("attachment")
    assert (await client.get("/console/media/424242")).status == 404

    # Signed out: nothing says the file exists.
    async with aiohttp.ClientSession() as stranger:
        url = client.make_url(f"/console/media/{photo.id}")
        async with stranger.get(url, allow_redirects=False) as response:
            assert response.status == 404
            assert PNG not in await response.read()
        extras_url = client.make_url(f"/console/api/conversations/{WA}/extras")
        async with stranger.get(extras_url, allow_redirects=False) as response:
            assert response.status == 401


async def upload(
    client: TestClient[Any, Any],
    token: str,
    wa_id: str,
    content: bytes,
    mime: str,
    filename: str,
    caption: str | None = None,
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type=mime)
    if caption:
        form.add_field("caption", caption)
    return await client.post(
        f"/console/api/conversations/{wa_id}/media", data=form, headers={"X-CSRF-Token": token}
    )


async def media_sent(server: Outbound, to: str) -> list[dict[str, Any]]:
    return [m for m in await server.received(to) if m["type"] in ("image", "document")]


async def test_an_agent_sends_an_image_and_a_document_inside_the_window(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    server = await start_outbound(aiohttp_client, tmp_path, clock)
    client = server.client
    await add_contact(client, WA, name="Chris")
    await add_contact(client, "447911123456", name="Dana")
    token = await signed_in(client, ANN, name="Ann Lee")
    await receive(store_of(client), WA, "can you send the label?", clock.now())
    simulator: Simulator = client.app[SIMULATOR]

    answer = await upload(client, token, WA, PNG, "image/png", "label.png", "your label")
    assert answer.status == 202, await answer.text()
    sent = await answer.json()
    assert (sent["kind"], sent["text"], sent["agent"]) == ("media", "your label", ANN)

    [posted] = await eventually(lambda: media_sent(server, WA), what="the image at the API")
    image = posted["body"]["image"]
    assert image["caption"] == "your label"
    stored = simulator.media(image["id"])
    assert stored is not None
    assert (stored.content, stored.mime_type) == (PNG, "image/png")
    # The agent's own image is shown in the timeline, from the cache.
    extras = await (await client.get(f"/console/api/conversations/{WA}/extras")).json()
    assert f'src="/console/media/{image["id"]}"' in extras["bodies"][sent["id"]]
    assert "your label" in extras["bodies"][sent["id"]]
    file = await client.get(f"/console/media/{image['id']}")
    assert await file.read() == PNG

    answer = await upload(client, token, WA, b"%PDF-1.4", "application/pdf", "terms.pdf")
    assert answer.status == 202, await answer.text()

    async def two() -> list[dict[str, Any]]:
        found = await media_sent(server, WA)
        return found if len(found) == 2 else []

    document = (await eventually(two, what="the document at the API"))[1]["body"]["document"]
    assert document["filename"] == "terms.pdf"


async def test_a_wrong_file_or_a_closed_window_is_refused_and_nothing_is_sent(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    server = await start_outbound(aiohttp_client, tmp_path, clock)
    client = server.client
    await add_contact(client, WA, name="Chris")
    await add_contact(client, "447911123456", name="Dana")
    token = await signed_in(client, ANN, name="Ann Lee")
    await receive(store_of(client), WA, "hi", clock.now())

    async def refused(answer: aiohttp.ClientResponse) -> dict[str, Any]:
        assert answer.status == 422, await answer.text()
        error: dict[str, Any] = (await answer.json())["error"]
        return error

    wrong_type = await refused(
        await upload(client, token, WA, b"<script>", "text/html", "page.html")
    )
    assert wrong_type["fields"][0]["field"] == "file"
    assert "page.html is text/html" in wrong_type["message"]
    too_big = await refused(
        await upload(client, token, WA, b"\xff" * (5 * 1024 * 1024 + 1), "image/jpeg", "big.jpg")
    )
    assert "big.jpg is over 5 MB" in too_big["message"]
    empty = aiohttp.FormData()
    empty.add_field("caption", "no file")
    nothing = await refused(
        await client.post(
            f"/console/api/conversations/{WA}/media", data=empty, headers={"X-CSRF-Token": token}
        )
    )
    assert nothing["fields"][0]["field"] == "file"

    # Dana never wrote: the window is closed, only templates may go.
    closed = await refused(await upload(client, token, "447911123456", PNG, "image/png", "x.png"))
    assert closed["code"] == "window_closed"
    messages = await messages_of(store_of(client), "447911123456")
    assert [m for m in messages if m.direction == "outbound"] == []
    assert await media_sent(server, "447911123456") == []
    assert await media_sent(server, WA) == []

"""``python -m engine customer-says TEXT``: play a customer against a running server.

It posts what Meta would post when a customer writes to the business number (a
``messages`` notification with the current time, signed with ``WA_APP_SECRET`` when
it is set) to the server's ``POST /webhook``, then prints what the business sent back,
as the built-in Cloud API simulator received it (reading that needs the REST API
token: ``--api-token``, or ``API_TOKEN``). A newcomer sees the bot answer without a
phone or a Meta account::

    $ python -m engine customer-says --api-token "$T" hi
    you (16505551234): hi
    business (interactive): Hi Ann! How can we help you today?
      [Order status] [See offers] [Talk to a person]

``--user-id US.13491208655302741918`` plays a customer who hides their number behind a
username: the notification names them by Meta's user id only, and the answers go to
that id (``recipient`` rather than ``to``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mimetypes
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from engine.config import Settings, load_settings
from engine.identity import USER_ID_SHAPE, is_user_id
from engine.whatsapp.signature import HEADER, sign

REPLY_WAIT_SECONDS = 5.0
"""How long to wait for an answer at most."""
SETTLE_SECONDS = 0.5
"""Once an answer came, how long nothing more must come before it is taken as whole.
The bot queues one message's replies together and the sender sends them back to back,
milliseconds apart."""
POLL_SECONDS = 0.05


def text_notification(
    text: str, *, sender: str, name: str, phone_number_id: str, at: float | None = None
) -> dict[str, Any]:
    """Meta's notification of a customer's text message.

    >>> note = text_notification("hi", sender="16505551234", name="Ann", phone_number_id="1")
    >>> message = note["entry"][0]["changes"][0]["value"]["messages"][0]
    >>> (message["from"], message["type"], message["text"])
    ('16505551234', 'text', {'body': 'hi'})

    A customer known by a user id only (they hide their number behind a username):

    >>> note = text_notification("hi", sender="US.1349", name="Ann", phone_number_id="1")
    >>> value = note["entry"][0]["changes"][0]["value"]
    >>> value["contacts"][0]["user_id"], value["messages"][0]["from_user_id"]
    ('US.1349', 'US.1349')
    >>> "from" in value["messages"][0], "wa_id" in value["contacts"][0]
    (False, False)
    """
    by_user_id = is_user_id(sender)
    who = {"user_id": sender} if by_user_id else {"wa_id": sender}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "0",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000000",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, **who}],
                            "messages": [
                                {
                                    ("from_user_id" if by_user_id else "from"): sender,
                                    "id": f"wamid.customer-says.{uuid.uuid4().hex}",
                                    "timestamp": str(int(time.time() if at is None else at)),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def media_notification(
    kind: str,
    media: dict[str, Any],
    *,
    sender: str,
    name: str,
    phone_number_id: str,
    caption: str | None = None,
    filename: str | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    """Meta's notification of a customer's image or document: the media object carries
    the id the Graph API serves it under, its MIME type and sha256.

    >>> note = media_notification("document", {"id": "7", "mime_type": "application/pdf",
    ...     "sha256": "ab"}, sender="16505551234", name="Ann", phone_number_id="1",
    ...     filename="invoice.pdf")
    >>> note["entry"][0]["changes"][0]["value"]["messages"][0]["document"]
    {'id': '7', 'mime_type': 'application/pdf', 'sha256': 'ab', 'filename': 'invoice.pdf'}
    """
    note = text_notification("", sender=sender, name=name, phone_number_id=phone_number_id, at=at)
    message = note["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = kind
    detail = {k: media[k] for k in ("id", "mime_type", "sha256")}
    if caption:
        detail["caption"] = caption
    if filename and kind == "document":
        detail["filename"] = filename
    message[kind] = detail
    return note


async def upload_customer_media(
    http: aiohttp.ClientSession, base: str, path: Path, headers: dict[str, str]
) -> dict[str, Any]:
    """Hand the simulator a file the customer sends (as Meta holds it); its id, MIME
    type and sha256."""
    form = aiohttp.FormData()
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    form.add_field(
        "file", await asyncio.to_thread(path.read_bytes), filename=path.name, content_type=mime
    )
    async with http.post(f"{base}/simulator/customer-media", data=form, headers=headers) as got:
        if got.status != 201:
            raise SystemExit(f"the simulator did not take {path}: {got.status} {await got.text()}")
        stored: dict[str, Any] = await got.json()
        return stored


def describe(sent: dict[str, Any]) -> list[str]:
    """How a send body reads to the customer, in a line or two."""
    body = sent.get("body") or {}
    kind = body.get("type")
    if kind == "text":
        return [f"business (text): {body['text']['body']}"]
    if kind == "template":
        template = body["template"]
        return [f"business (template {template['name']}, {template['language']['code']})"]
    if kind == "interactive":
        interactive = body["interactive"]
        lines = [f"business (interactive): {interactive['body']['text']}"]
        action = interactive.get("action", {})
        titles = [b["reply"]["title"] for b in action.get("buttons", [])]
        rows = [r["title"] for s in action.get("sections", []) for r in s.get("rows", [])]
        if titles or rows:
            lines.append("  " + " ".join(f"[{title}]" for title in titles or rows))
        return lines
    return [f"business ({kind}): {json.dumps(body)[:200]}"]


async def customer_says(
    settings: Settings,
    text: str,
    sender: str,
    name: str,
    *,
    wait: float = REPLY_WAIT_SECONDS,
    api_token: str | None = None,
    image: Path | None = None,
    document: Path | None = None,
) -> int:
    """Post the message (an image or a document, with ``text`` as its caption, when one
    is given), then print the replies that reach the simulator within ``wait`` (read
    with ``api_token``, by default the settings' ``API_TOKEN``)."""
    base = settings.base_url
    token = api_token or settings.api_token or ""
    inspect = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        attached = image or document
        if attached is not None:
            media = await upload_customer_media(http, base, attached, inspect)
            note = media_notification(
                "image" if image else "document",
                media,
                sender=sender,
                name=name,
                phone_number_id=settings.wa_phone_number_id,
                caption=text or None,
                filename=attached.name,
            )
        else:
            note = text_notification(
                text, sender=sender, name=name, phone_number_id=settings.wa_phone_number_id
            )
        raw = json.dumps(note).encode()
        headers = {"Content-Type": "application/json"}
        if settings.wa_app_secret:
            headers[HEADER] = sign(raw, settings.wa_app_secret)
        seen = await _received(http, base, sender, inspect)
        async with http.post(f"{base}/webhook", data=raw, headers=headers) as answer:
            if answer.status != 200:
                print(f"the webhook answered {answer.status}: {await answer.text()}")
                return 1
        label = f"[{'image' if image else 'document'} {attached.name}] " if attached else ""
        print(f"you ({sender}): {label}{text}")
        deadline = time.monotonic() + wait
        shown = len(seen)
        last_at: float | None = None  # when the last reply arrived
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            received = await _received(http, base, sender, inspect)
            for sent in received[shown:]:
                print("\n".join(describe(sent)))
            if len(received) > shown:
                shown, last_at = len(received), time.monotonic()
            elif last_at is not None and time.monotonic() - last_at >= SETTLE_SECONDS:
                break  # the answer is here and nothing more is coming
        if shown == len(seen):
            print("(no answer came back: is the bot, not an agent, answering this contact?)")
    return 0


async def _received(
    http: aiohttp.ClientSession, base: str, sender: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    url = f"{base}/simulator/messages"
    async with http.get(url, params={"to": sender}, headers=headers) as answer:
        if answer.status == 401:
            raise SystemExit(
                f"{url} needs the API token the server printed at its first start: "
                "--api-token TOKEN, or API_TOKEN in the environment"
            )
        if answer.status != 200:
            raise SystemExit(
                f"{base}/simulator/messages answered {answer.status}: this tool needs a server "
                "running the built-in simulator (no WA_ACCESS_TOKEN)"
            )
        listed: list[dict[str, Any]] = (await answer.json())["messages"]
        return [sent for sent in listed if sent.get("wamid")]


def run(args: argparse.Namespace) -> int:
    if args.user_id is not None:
        if not is_user_id(args.user_id):
            print(f"--user-id: {args.user_id!r} is not a user id ({USER_ID_SHAPE})")
            return 2
        args.sender = args.user_id
    settings = load_settings()
    if args.server:
        settings = settings.model_copy(update={"public_url": args.server.rstrip("/")})
    try:
        return asyncio.run(
            customer_says(
                settings,
                args.text,
                args.sender,
                args.name,
                api_token=args.api_token,
                image=args.image,
                document=args.document,
            )
        )
    except aiohttp.ClientConnectionError as error:
        print(f"cannot reach {settings.base_url}: {error}; is `python webhook_server.py` running?")
        return 1


def add_command(commands: Any) -> None:
    says = commands.add_parser(
        "customer-says", help="write to the running server as a customer and show the answer"
    )
    says.add_argument(
        "text", nargs="?", default="", help="what the customer writes, e.g. hi (a caption)"
    )
    attach = says.add_mutually_exclusive_group()
    attach.add_argument("--image", type=Path, help="send this image (JPEG or PNG)")
    attach.add_argument("--document", type=Path, help="send this document, e.g. a PDF")
    says.add_argument("--from", dest="sender", default="16505551234", help="their wa_id")
    says.add_argument(
        "--user-id",
        help="play a customer known by a business-scoped user id only (no phone number), "
        "e.g. US.13491208655302741918",
    )
    says.add_argument("--name", default="Ann", help="their WhatsApp profile name")
    says.add_argument("--server", help="the server's URL (default: PUBLIC_URL or HOST:PORT)")
    says.add_argument(
        "--api-token", help="the REST API token, to read the simulator (default: API_TOKEN)"
    )
    says.set_defaults(run=run)

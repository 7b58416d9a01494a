"""Media in the console: what a message shows inline (images, stickers, video, audio,
documents, locations, contact cards), the files themselves for signed-in agents, and
an agent's upload of an image or a document to send.

Inbound messages keep Meta's message object as their payload, which names the type and
carries an object of that name (``{"type": "image", "image": {"id": ..., "mime_type":
..., "caption": ...}}``); outbound ones keep the content that was queued
(``{"kind": "media", "media_type": "image", "media_id": ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from engine.agents import desk
from engine.media.graph import MediaUnavailable
from engine.models.content import MediaContent, MediaType
from engine.models.message import Message
from engine.web.addresses import contact_address
from engine.web.compose_body import composed_json
from engine.web.console.auth import SESSION
from engine.web.console.render import SECURITY_HEADERS
from engine.web.error_answers import ApiError
from engine.web.keys import CLOCK, MEDIA, SETTINGS, STORE
from engine.web.refusals import invalid

routes = web.RouteTableDef()

MEDIA_PREFIX = "/console/media/"

IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
"""What Meta takes as an image message."""
IMAGE_MAX_BYTES = 5 * 1024 * 1024
DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "text/plain",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
CAPTION_MAX = 1024
INLINE_TYPES = ("image/", "audio/", "video/")


@dataclass(frozen=True, slots=True)
class SharedCard:
    name: str
    phones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RichBody:
    """What a message shows besides its text."""

    kind: str
    media_id: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None
    voice: bool = False
    latitude: float | None = None
    longitude: float | None = None
    place: str | None = None
    address: str | None = None
    cards: tuple[SharedCard, ...] = field(default=())

    @property
    def src(self) -> str:
        return MEDIA_PREFIX + quote(self.media_id or "", safe="")

    @property
    def map_url(self) -> str:
        return (
            f"https://www.openstreetmap.org/?mlat={self.latitude}&mlon={self.longitude}"
            f"#map=17/{self.latitude}/{self.longitude}"
        )


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rich_body(message: Message) -> RichBody | None:
    """The inline media, location or contact cards of ``message``; None for text."""
    payload = message.payload or {}
    if payload.get("kind") == "media":  # what an agent or the API queued (MediaContent)
        return (
            RichBody(
                kind=str(payload.get("media_type")),
                media_id=_text(payload.get("media_id")),
                caption=_text(payload.get("caption")),
                filename=_text(payload.get("filename")),
            )
            if _text(payload.get("media_id"))
            else None
        )
    kind = payload.get("type") if isinstance(payload.get("type"), str) else message.kind
    if kind in ("image", "sticker", "video", "audio", "document"):
        media = _object(payload, kind)
        media_id = _text(media.get("id"))
        if media_id is None:
            return None
        return RichBody(
            kind=kind,
            media_id=media_id,
            mime_type=_text(media.get("mime_type")),
            filename=_text(media.get("filename")),
            caption=_text(media.get("caption")),
            voice=media.get("voice") is True,
        )
    if kind == "location":
        place = _object(payload, "location")
        latitude, longitude = _number(place.get("latitude")), _number(place.get("longitude"))
        if latitude is None or longitude is None:
            return None
        return RichBody(
            kind=kind,
            latitude=latitude,
            longitude=longitude,
            place=_text(place.get("name")),
            address=_text(place.get("address")),
        )
    if kind == "contacts":
        cards = payload.get("contacts")
        found = []
        for card in cards if isinstance(cards, list) else []:
            if not isinstance(card, dict):
                continue
            name = _object(card, "name")
            phones = card.get("phones")
            numbers = tuple(
                p["phone"]
                for p in (phones if isinstance(phones, list) else [])
                if isinstance(p, dict) and isinstance(p.get("phone"), str)
            )
            label = _text(name.get("formatted_name")) or _text(name.get("first_name")) or "Contact"
            found.append(SharedCard(label, numbers))
        return RichBody(kind=kind, cards=tuple(found))
    return None


def reaction_of(message: Message) -> tuple[str, str] | None:
    """(the reacted-to message's wamid, the emoji; empty when removed) of a reaction."""
    if message.kind != "reaction":
        return None
    reaction = _object(message.payload or {}, "reaction")
    target = _text(reaction.get("message_id"))
    if target is None:
        return None
    emoji = reaction.get("emoji")
    return target, emoji if isinstance(emoji, str) else ""


# --- the files -----------------------------------------------------------------------------


@routes.get(MEDIA_PREFIX + "{media_id}")
async def media_file(request: web.Request) -> web.StreamResponse:
    """The file, to signed-in agents (the console's middleware answers 404 to anyone
    else). It never runs as a page: a sandbox policy and no type sniffing."""
    service = request.app.get(MEDIA)
    if service is None:
        raise web.HTTPNotFound()
    try:
        media = await service.get(request.match_info["media_id"])
    except MediaUnavailable:
        raise web.HTTPNotFound() from None
    inline = media.mime_type.startswith(INLINE_TYPES)
    disposition = "inline" if inline else "attachment"
    if media.filename:
        disposition += f"; filename*=UTF-8''{quote(media.filename)}"
    return web.FileResponse(
        media.path,
        headers={
            "Content-Type": media.mime_type,
            "Content-Disposition": disposition,
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=86400",
        },
    )


# --- an agent sends an image or a document ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    content: bytes
    mime_type: str
    filename: str
    caption: str | None


def _media_type(mime: str) -> MediaType | None:
    if mime in IMAGE_TYPES:
        return MediaType.IMAGE
    if mime in DOCUMENT_TYPES:
        return MediaType.DOCUMENT
    return None


async def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """The ``file`` and optional ``caption`` of a multipart form, read part by part with
    a limit; 422 naming what is wrong."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise invalid("file", "send the file as multipart/form-data") from None
    content: bytes | None = None
    mime = filename = ""
    caption: str | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            mime = (part.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            filename = part.filename or "file"
            chunks, size = [], 0
            while chunk := await part.read_chunk(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise invalid("file", f"{filename} is over {max_bytes // (1024 * 1024)} MB")
                chunks.append(chunk)
            content = b"".join(chunks)
        elif part.name == "caption":
            caption = (await part.text()).strip() or None
    if content is None or not content:
        raise invalid("file", "choose a file to send")
    kind = _media_type(mime)
    if kind is None:
        raise invalid(
            "file",
            f"{filename} is {mime or 'of an unknown type'}: send a JPEG or PNG image, "
            "or a PDF, text, Word, Excel or PowerPoint document",
        )
    if kind is MediaType.IMAGE and len(content) > IMAGE_MAX_BYTES:
        raise invalid("file", f"{filename} is over 5 MB, the largest image WhatsApp takes")
    if caption is not None and len(caption) > CAPTION_MAX:
        raise invalid("caption", f"at most {CAPTION_MAX} characters")
    return Upload(content, mime, filename, caption)


@routes.post("/console/api/conversations/{contact}/media")
async def send_media(request: web.Request) -> web.Response:
    address = contact_address(request)
    service = request.app.get(MEDIA)
    if service is None:
        raise ApiError(503, "media_unavailable", "media cannot be sent from this process")
    settings = request.app[SETTINGS]
    upload = await read_upload(request, int(settings.media_upload_max_mb * 1024 * 1024))
    kind = _media_type(upload.mime_type)
    assert kind is not None
    try:
        uploaded = await service.upload(
            settings.wa_phone_number_id,
            upload.content,
            mime_type=upload.mime_type,
            filename=upload.filename,
        )
    except MediaUnavailable as error:
        raise ApiError(
            502, "upload_failed", f"the Cloud API did not take the file: {error}"
        ) from None
    content = MediaContent(
        media_type=kind,
        media_id=uploaded.media_id,
        caption=upload.caption,
        filename=upload.filename if kind is MediaType.DOCUMENT else None,
    )
    composed = await desk.compose_as(
        request.app[STORE],
        address,
        request[SESSION].agent.email,
        content,
        confirm_opted_out=False,
        now=request.app[CLOCK].now(),
    )
    return web.json_response(composed_json(composed), status=202, headers=SECURITY_HEADERS)

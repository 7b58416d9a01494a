"""A customer's message, of any type Meta sends, as the :class:`CustomerInput` flows read.

>>> from engine.whatsapp.webhook import parse_message
>>> customer_input(parse_message({"from": "16505551234", "id": "wamid.B", "type": "button",
...     "button": {"payload": "SHOP_NOW", "text": "Shop now"}}))
CustomerInput(kind=<InputKind.BUTTON: 'button'>, text='Shop now', choice_id='SHOP_NOW', \
media_type=None, media_id=None, latitude=None, longitude=None, reply_to=None)
"""

from __future__ import annotations

from typing import Any

from engine.models.customer_input import CustomerInput, InputKind
from engine.whatsapp.webhook import InboundMessage


def customer_input(message: InboundMessage) -> CustomerInput:
    reply_to = message.context.id if message.context else None
    match message.type:
        case "text":
            body = message.text.body if message.text else None
            return CustomerInput(kind=InputKind.TEXT, text=body, reply_to=reply_to)
        case "button" if message.button:
            return CustomerInput(
                kind=InputKind.BUTTON,
                text=message.button.text,
                choice_id=message.button.payload,
                reply_to=reply_to,
            )
        case "interactive" if message.interactive:
            return _interactive(message, reply_to)
        case "location" if message.location:
            place = message.location
            return CustomerInput(
                kind=InputKind.LOCATION,
                text=place.name or place.address,
                latitude=place.latitude,
                longitude=place.longitude,
                reply_to=reply_to,
            )
        case "reaction":
            reaction = message.reaction
            return CustomerInput(
                kind=InputKind.REACTION,
                text=(reaction.emoji or None) if reaction else None,
                reply_to=(reaction.message_id if reaction else None) or reply_to,
            )
        case "edit" | "revoke":
            return CustomerInput(
                kind=InputKind.EDIT if message.type == "edit" else InputKind.REVOKE,
                text=_edited_text(message),
                reply_to=_original_id(message) or reply_to,
            )
        case "contacts" if message.contacts:
            names = [card.name.formatted_name for card in message.contacts if card.name]
            return CustomerInput(
                kind=InputKind.OTHER, text=", ".join(filter(None, names)) or None, reply_to=reply_to
            )
    media = message.media
    if media is not None:
        return CustomerInput(
            kind=InputKind.MEDIA,
            text=media.caption,
            media_type=message.type,
            media_id=media.id,
            reply_to=reply_to,
        )
    # unsupported, system, and types Meta adds later: the raw message is in the row.
    return CustomerInput(kind=InputKind.OTHER, reply_to=reply_to)


def _detail(message: InboundMessage) -> dict[str, Any]:
    """The object named after the message's type (``"edit": {...}``), as Meta sent it."""
    detail = message.raw.get(message.type)
    return detail if isinstance(detail, dict) else {}


def _original_id(message: InboundMessage) -> str | None:
    original = _detail(message).get("original_message_id")
    return original if isinstance(original, str) and original else None


def _edited_text(message: InboundMessage) -> str | None:
    edited = _detail(message).get("message")
    text = edited.get("text") if isinstance(edited, dict) else None
    body = text.get("body") if isinstance(text, dict) else None
    return body if isinstance(body, str) else None


def _interactive(message: InboundMessage, reply_to: str | None) -> CustomerInput:
    interactive = message.interactive
    assert interactive is not None
    if interactive.type == "call_permission_reply":
        reply = (
            interactive.model_extra.get("call_permission_reply")
            if interactive.model_extra
            else None
        )
        response = reply.get("response") if isinstance(reply, dict) else None
        return CustomerInput(
            kind=InputKind.CALL_PERMISSION,
            text=response if isinstance(response, str) else None,
            reply_to=reply_to,
        )
    if interactive.type == "button_reply" and interactive.button_reply:
        reply = interactive.button_reply
        return CustomerInput(
            kind=InputKind.BUTTON, text=reply.title, choice_id=reply.id, reply_to=reply_to
        )
    if interactive.type == "list_reply" and interactive.list_reply:
        row = interactive.list_reply
        return CustomerInput(
            kind=InputKind.LIST, text=row.title, choice_id=row.id, reply_to=reply_to
        )
    if interactive.type == "nfm_reply" and interactive.nfm_reply:
        # A completed WhatsApp Flow; its form data (response_json) stays in the payload.
        form = interactive.nfm_reply
        return CustomerInput(kind=InputKind.OTHER, text=form.body, reply_to=reply_to)
    return CustomerInput(kind=InputKind.OTHER, reply_to=reply_to)

"""Each message type Meta sends, reduced to the CustomerInput a flow reads."""

from __future__ import annotations

from typing import Any

import pytest

from engine.inbound.input_from_message import customer_input
from engine.models.customer_input import CustomerInput, InputKind
from engine.whatsapp.webhook import parse_message


def said(**message: Any) -> CustomerInput:
    return customer_input(parse_message({"from": "16505551234", "id": "wamid.X", **message}))


def test_a_reply_names_the_message_it_answers() -> None:
    got = said(type="text", text={"body": "yes"}, context={"from": "15550783881", "id": "wamid.Q"})
    assert (got.kind, got.text, got.reply_to) == (InputKind.TEXT, "yes", "wamid.Q")


@pytest.mark.parametrize("media", ["image", "audio", "video", "document", "sticker"])
def test_media_keeps_its_type_id_and_caption(media: str) -> None:
    got = said(type=media, **{media: {"id": "998", "caption": "look", "mime_type": "x/y"}})
    assert (got.kind, got.media_type, got.media_id, got.text) == (
        InputKind.MEDIA,
        media,
        "998",
        "look",
    )


def test_a_removed_reaction_has_no_text_but_names_its_message() -> None:
    got = said(type="reaction", reaction={"message_id": "wamid.R", "emoji": ""})
    assert (got.kind, got.text, got.reply_to) == (InputKind.REACTION, None, "wamid.R")


@pytest.mark.parametrize(
    ("message", "kind", "text", "reply_to"),
    [
        (
            {
                "type": "edit",
                "edit": {
                    "original_message_id": "wamid.O",
                    "message": {"type": "text", "text": {"body": "fixed"}},
                },
            },
            InputKind.EDIT,
            "fixed",
            "wamid.O",
        ),
        (
            {"type": "revoke", "revoke": {"original_message_id": "wamid.O"}},
            InputKind.REVOKE,
            None,
            "wamid.O",
        ),
        ({"type": "edit", "edit": "junk"}, InputKind.EDIT, None, None),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "call_permission_reply",
                    "call_permission_reply": {"response": "accept", "is_permanent": False},
                },
            },
            InputKind.CALL_PERMISSION,
            "accept",
            None,
        ),
    ],
)
def test_acts_on_earlier_messages_are_not_said_to_the_bot(
    message: dict[str, Any], kind: InputKind, text: str | None, reply_to: str | None
) -> None:
    got = said(**message)
    assert (got.kind, got.text, got.reply_to) == (kind, text, reply_to)
    assert got.said_to_the_bot is False


def test_a_location_without_a_name_uses_its_address() -> None:
    got = said(type="location", location={"latitude": 1.5, "longitude": 2, "address": "Main St"})
    assert (got.kind, got.text, got.latitude, got.longitude) == (
        InputKind.LOCATION,
        "Main St",
        1.5,
        2.0,
    )


@pytest.mark.parametrize(
    "message",
    [
        {"type": "interactive", "interactive": {"type": "voice_call"}},
        {"type": "button"},  # a type whose object is missing
        {"type": "order", "order": {"catalog_id": "1", "product_items": []}},
        {"type": "system", "system": {"type": "user_changed_number"}},
    ],
)
def test_anything_else_is_other(message: dict[str, Any]) -> None:
    assert said(**message).kind is InputKind.OTHER

"""Meta's send bodies (``POST /{version}/{phone_number_id}/messages``) as pydantic models.

:func:`send_document` turns our outbound content (``engine/models/content.py``) into
the exact JSON the Cloud API takes; :class:`SendBody` describes that JSON, and the
simulator validates what it receives against it, so both ends agree on the wire format.

>>> from engine.models.content import TextContent
>>> build_send_body("16505551234", TextContent(body="Hi")).model_dump(exclude_none=True)
... # doctest: +NORMALIZE_WHITESPACE
{'messaging_product': 'whatsapp', 'recipient_type': 'individual', 'to': '16505551234',
 'type': 'text', 'text': {'body': 'Hi', 'preview_url': False}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.models.content import (
    ButtonsContent,
    ListContent,
    MediaContent,
    MediaType,
    OutboundContent,
    TemplateContent,
    TextContent,
)
from engine.models.template import ButtonType, Template

_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


class _Wire(BaseModel):
    # Meta refuses parameters it does not know (error 100), so do we.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Wire):
    body: str = Field(min_length=1, max_length=4096)
    preview_url: bool = False


class Language(_Wire):
    code: str = Field(min_length=2)
    policy: Literal["deterministic"] | None = None


class TextParameter(_Wire):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1)


class PayloadParameter(_Wire):
    type: Literal["payload"] = "payload"
    payload: str = Field(min_length=1)


class MediaLink(_Wire):
    link: str | None = None
    id: str | None = None


class ImageParameter(_Wire):
    type: Literal["image"] = "image"
    image: MediaLink


class VideoParameter(_Wire):
    type: Literal["video"] = "video"
    video: MediaLink


class DocumentParameter(_Wire):
    type: Literal["document"] = "document"
    document: MediaLink


Parameter = Annotated[
    TextParameter | PayloadParameter | ImageParameter | VideoParameter | DocumentParameter,
    Field(discriminator="type"),
]


class HeaderComponent(_Wire):
    type: Literal["header"] = "header"
    parameters: tuple[Parameter, ...] = ()


class BodyComponent(_Wire):
    type: Literal["body"] = "body"
    parameters: tuple[Parameter, ...] = ()


class ButtonComponent(_Wire):
    type: Literal["button"] = "button"
    sub_type: Literal["quick_reply", "url", "copy_code"]
    index: str = Field(pattern=r"^\d$")
    parameters: tuple[Parameter, ...] = ()


Component = Annotated[
    HeaderComponent | BodyComponent | ButtonComponent, Field(discriminator="type")
]


class TemplateObject(_Wire):
    name: str = Field(min_length=1)
    language: Language
    components: tuple[Component, ...] | None = None

    def body_parameters(self) -> tuple[Parameter, ...]:
        return next((c.parameters for c in self.components or () if c.type == "body"), ())


class InteractiveText(_Wire):
    text: str = Field(min_length=1)


class InteractiveHeader(_Wire):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=60)


class Reply(_Wire):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ReplyButton(_Wire):
    type: Literal["reply"] = "reply"
    reply: Reply


class Row(_Wire):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: str | None = Field(default=None, max_length=72)


class Section(_Wire):
    title: str | None = Field(default=None, max_length=24)
    rows: tuple[Row, ...] = Field(min_length=1, max_length=10)


class Action(_Wire):
    buttons: tuple[ReplyButton, ...] | None = Field(default=None, min_length=1, max_length=3)
    button: str | None = Field(default=None, min_length=1, max_length=20)
    sections: tuple[Section, ...] | None = Field(default=None, min_length=1, max_length=10)


class Interactive(_Wire):
    type: Literal["button", "list"]
    header: InteractiveHeader | None = None
    body: InteractiveText
    footer: InteractiveText | None = None
    action: Action

    @model_validator(mode="after")
    def _action_fits_type(self) -> Interactive:
        if self.type == "button" and not self.action.buttons:
            raise ValueError("interactive.action.buttons is required for type button")
        if self.type == "list" and not (self.action.button and self.action.sections):
            raise ValueError("interactive.action.button and sections are required for type list")
        return self


class Media(_Wire):
    link: str | None = None
    id: str | None = None
    caption: str | None = Field(default=None, max_length=1024)
    filename: str | None = None

    @model_validator(mode="after")
    def _link_or_id(self) -> Media:
        if (self.link is None) == (self.id is None):
            raise ValueError("media needs exactly one of link and id")
        return self


class Context(_Wire):
    message_id: str


MessageType = Literal[
    "text", "template", "interactive", "image", "audio", "video", "document", "sticker"
]
_MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")


class SendBody(_Wire):
    """The JSON of one send request."""

    messaging_product: Literal["whatsapp"] = "whatsapp"
    recipient_type: Literal["individual"] = "individual"
    to: str | None = Field(default=None, min_length=1, description="the recipient's phone number")
    recipient: str | None = Field(
        default=None, description="a business-scoped user id, for people known by username"
    )
    type: MessageType
    context: Context | None = None
    text: Text | None = None
    template: TemplateObject | None = None
    interactive: Interactive | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    biz_opaque_callback_data: str | None = Field(
        default=None,
        max_length=512,
        description="echoed by Meta in every status notification of this message",
    )
    message_send_ttl_seconds: int | None = Field(
        default=None,
        ge=-1,
        description="templates: how long Meta keeps trying to deliver the message",
    )

    @model_validator(mode="after")
    def _one_object_of_its_type(self) -> SendBody:
        if (self.to is None) == (self.recipient is None):
            raise ValueError("exactly one of to and recipient is required")
        objects = ("text", "template", "interactive", *_MEDIA_TYPES)
        present = [name for name in objects if getattr(self, name) is not None]
        if present != [self.type]:
            raise ValueError(f"type {self.type} needs the {self.type} object and no other")
        if self.type in ("audio", "sticker") and getattr(self, self.type).caption is not None:
            raise ValueError(f"{self.type} messages take no caption")
        return self

    @property
    def address(self) -> str:
        address = self.to or self.recipient
        assert address is not None
        return address


def _template_document(content: TemplateContent, template: Template | None) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    if content.params:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in content.params]}
        )
    for index, button in enumerate(template.buttons if template else ()):
        if button.type is ButtonType.QUICK_REPLY and button.payload:
            components.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": str(index),
                    "parameters": [{"type": "payload", "payload": button.payload}],
                }
            )
        elif button.type is ButtonType.URL and button.url:
            match = _PLACEHOLDER.search(button.url)
            if match and int(match[1]) <= len(content.params):
                components.append(
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": str(index),
                        "parameters": [{"type": "text", "text": content.params[int(match[1]) - 1]}],
                    }
                )
    document: dict[str, Any] = {"name": content.name, "language": {"code": content.language}}
    if components:
        document["components"] = components
    return document


def _interactive_document(content: ButtonsContent | ListContent) -> dict[str, Any]:
    document: dict[str, Any] = {"type": "button" if isinstance(content, ButtonsContent) else "list"}
    if content.header:
        document["header"] = {"type": "text", "text": content.header}
    document["body"] = {"text": content.body}
    if content.footer:
        document["footer"] = {"text": content.footer}
    if isinstance(content, ButtonsContent):
        document["action"] = {
            "buttons": [
                {"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in content.buttons
            ]
        }
    else:
        document["action"] = {
            "button": content.button,
            "sections": [
                _without_none(
                    {
                        "title": section.title,
                        "rows": [
                            _without_none(
                                {"id": r.id, "title": r.title, "description": r.description}
                            )
                            for r in section.rows
                        ],
                    }
                )
                for section in content.sections
            ],
        }
    return document


def _without_none(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not None}


def send_document(
    address: str,
    content: OutboundContent,
    *,
    template: Template | None = None,
    reference: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """Meta's send body for ``content`` to ``address`` (a wa_id, or a user id with a dot),
    as the JSON document that is posted. :class:`SendBody` describes and validates it.

    Template bodies get a body parameter per ``{{n}}`` and, when the catalogue entry is
    known, a button component per button that needs one: quick replies carry their
    payload (so a tap comes back with it), and a URL with ``{{n}}`` takes body
    parameter ``n`` (e.g. an authentication code).

    ``reference`` becomes ``biz_opaque_callback_data``: our message id, which Meta echoes
    in every status of the message, so a status can be tied to our row even when we never
    got the wamid (a crash during the HTTP call).
    """
    document: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    document["recipient" if "." in address else "to"] = address
    match content:
        case TextContent():
            document["type"] = "text"
            document["text"] = {"body": content.body, "preview_url": content.preview_url}
        case TemplateContent():
            document["type"] = "template"
            document["template"] = _template_document(content, template)
        case ButtonsContent() | ListContent():
            document["type"] = "interactive"
            document["interactive"] = _interactive_document(content)
        case MediaContent():
            kind = content.media_type.value
            media = {"link": content.link, "id": content.media_id}
            if content.media_type not in (MediaType.AUDIO, MediaType.STICKER):
                media["caption"] = content.caption
            if content.media_type is MediaType.DOCUMENT:
                media["filename"] = content.filename
            document["type"] = kind
            document[kind] = _without_none(media)
    if reply_to:
        document["context"] = {"message_id": reply_to}
    ttl = template.message_send_ttl_seconds if template is not None else None
    if isinstance(content, TemplateContent) and ttl is not None:
        document["message_send_ttl_seconds"] = ttl
    if reference:
        document["biz_opaque_callback_data"] = reference
    return document


def build_send_body(
    address: str,
    content: OutboundContent,
    *,
    template: Template | None = None,
    reference: str | None = None,
    reply_to: str | None = None,
) -> SendBody:
    """:func:`send_document`, validated as the Cloud API would."""
    return SendBody.model_validate(
        send_document(address, content, template=template, reference=reference, reply_to=reply_to)
    )


def send_json(
    address: str,
    content: OutboundContent,
    *,
    template: Template | None = None,
    reference: str | None = None,
) -> str:
    """The JSON text the sender posts (built without a validation pass: the content
    models already hold Meta's limits)."""
    document = send_document(address, content, template=template, reference=reference)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


# Campaigns: one content to many recipients.
_quoted: Callable[[str], str] = encode_basestring
"""A text as a JSON string, as ``json.dumps(..., ensure_ascii=False)`` writes it."""


_ADDRESS = "\x00address\x00"
_REFERENCE = "\x00reference\x00"


def send_json_for(
    content: OutboundContent, *, template: Template | None = None
) -> Callable[[str, str], str]:
    """:func:`send_json` for many recipients of one content: the body is built once per
    kind of address (phone number or user id), and each recipient's copy only gets its
    address and reference put in.

    >>> from engine.models.content import TextContent
    >>> hello = TextContent(body="Hi")
    >>> body_for = send_json_for(hello)
    >>> body_for("16505551234", "m-1") == send_json("16505551234", hello, reference="m-1")
    True
    >>> body_for("US.1349", "m-2") == send_json("US.1349", hello, reference="m-2")
    True
    """
    parts: dict[bool, tuple[str, str, str] | None] = {}

    def split(by_user_id: bool) -> tuple[str, str, str] | None:
        address = _ADDRESS + ("." if by_user_id else "")
        built = send_json(address, content, template=template, reference=_REFERENCE)
        address_marker, reference_marker = json.dumps(address), json.dumps(_REFERENCE)
        if built.count(address_marker) != 1 or built.count(reference_marker) != 1:
            return None  # the content itself holds a marker: build each body in full
        head, _, rest = built.partition(address_marker)
        middle, found, tail = rest.partition(reference_marker)
        return (head, middle, tail) if found else None

    def body(address: str, reference: str) -> str:
        by_user_id = "." in address
        if by_user_id not in parts:
            parts[by_user_id] = split(by_user_id)
        found = parts[by_user_id]
        if found is None:
            return send_json(address, content, template=template, reference=reference)
        head, middle, tail = found
        return head + _quoted(address) + middle + _quoted(reference) + tail

    return body


def wire_json(body: SendBody) -> bytes:
    """The bytes posted to Meta: no nulls, as Meta's own examples."""
    return body.model_dump_json(exclude_none=True).encode()

"""Meta's webhook notification (WhatsApp Cloud API) as frozen pydantic models.

A notification is ``{"object": "whatsapp_business_account", "entry": [{"changes":
[{"field": "messages", "value": {...}}]}]}``. The ``value`` of the ``messages`` and
``user_preferences`` fields carries ``contacts[]``, ``messages[]``, ``statuses[]``,
``errors[]`` and ``user_preferences[]``; other fields (template status updates, account
alerts, ...) are kept as plain JSON and not acted on.

Meta adds message types and fields over time, so every model keeps what it does not
know (``extra="allow"``) and no unknown type is an error. What we act on is checked:
a message needs an ``id``, a ``type`` and a sender (``from``, a phone number, or
``from_user_id``, a business-scoped user id); a status needs an ``id`` and a ``status``.
Each message and status also keeps the dict it was read from (``raw``), which is what
the store records.

Only the envelope (``object``, the ``entry`` list, each entry's ``changes`` list of
objects) can make a notification unreadable. Below it each item (a contact, message,
status, error or preference) is read on its own: one that does not validate is left
out and described in its value's ``skipped_items``, so that Meta, which redelivers a
refused notification for days, never has good items held back by an odd one.

>>> note = parse_notification({
...     "object": "whatsapp_business_account",
...     "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
...         "contacts": [{"profile": {"name": "Ann"}, "wa_id": "16505551234"}],
...         "messages": [{"from": "16505551234", "id": "wamid.A", "timestamp": "1772441940",
...                       "type": "text", "text": {"body": "Hi"}}]}}]}]})
>>> [(m.id, m.text.body if m.text else None) for _, m in note.inbound_messages()]
[('wamid.A', 'Hi')]
>>> parse_notification({"object": "whatsapp_business_account"})
Traceback (most recent call last):
...
engine.whatsapp.webhook.InvalidNotification: entry: Field required
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SkipValidation,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from engine.identity import is_user_id
from engine.whatsapp.templates import TemplateChange, template_change

WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGE_FIELDS = frozenset({"messages", "user_preferences"})
"""Change fields whose ``value`` has the shape modelled here."""


class InvalidNotification(ValueError):
    """The notification cannot be accepted; ``field`` is where, e.g. ``entry[0].id``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Wire(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="allow", populate_by_name=True, coerce_numbers_to_str=True
    )


class _Raw(_Wire):
    """A model that remembers the JSON object it was read from."""

    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**data, "raw": data}
        return data


_CALLING_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _check_wa_id(value: str) -> str:
    """Meta sends phone numbers as E.164 digits without ``+``. The library's number
    metadata trails Meta's, so a number only has to parse, that is begin with a
    country calling code (they are prefix-free) and have the length of one; it need not
    be in a range the library knows."""
    if not (value.isascii() and value.isdigit() and 6 <= len(value) <= 15):
        raise ValueError(f"{value!r} is not a phone number (E.164 digits without '+')")
    codes = _CALLING_CODES
    if value[:1] not in codes and value[:2] not in codes and value[:3] not in codes:
        raise ValueError(f"{value!r} is not a phone number (unknown country code)")
    return value


WaId = Annotated[str, AfterValidator(_check_wa_id)]


def valid_wa_id(value: str | None) -> str | None:
    """``value`` when it is a phone number as Meta sends them, else None."""
    try:
        return None if value is None else _check_wa_id(value)
    except ValueError:
        return None


Id = Annotated[str, Field(min_length=1, max_length=512)]


def _user_id_or_none(value: Any) -> Any:
    # Anything else in a user id field names no one we could write to again, so it is
    # not attached to a contact (a message is then kept only if 'from' names its sender).
    return value if isinstance(value, str) and is_user_id(value) else None


UserId = Annotated[str | None, BeforeValidator(_user_id_or_none)]


def _utc(moment: datetime) -> datetime:
    # ISO text without a zone is read as UTC, like Meta's epoch seconds.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


Timestamp = Annotated[datetime, AfterValidator(_utc)]


# Shared pieces -----------------------------------------------------------------------


class ErrorData(_Wire):
    details: str | None = None


class WhatsAppError(_Wire):
    """An error Meta reports: on a message, a status, or the whole ``value``.

    >>> WhatsAppError(code=131050, title="User stopped marketing").describe()
    'User stopped marketing'
    """

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None

    def describe(self) -> str:
        details = self.error_data.details if self.error_data else None
        return details or self.message or self.title or f"WhatsApp error {self.code}"


class Profile(_Wire):
    name: str | None = None
    username: str | None = None


class WebhookContact(_Wire):
    """``value.contacts[]``: who wrote. ``wa_id`` is absent for a user who hides their
    number behind a username; ``user_id`` (business-scoped) is then always there."""

    wa_id: WaId | None = None
    user_id: UserId = None
    profile: Profile | None = None


# Inbound messages --------------------------------------------------------------------


class Context(_Wire):
    """What the message replies to (``id``, a wamid) or was forwarded from."""

    id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None


class Text(_Wire):
    body: str | None = None


class ButtonReply(_Wire):
    id: str | None = None
    title: str | None = None


class ListReply(_Wire):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class NfmReply(_Wire):
    """The answer to a WhatsApp Flow; ``response_json`` is the form's data as a string."""

    name: str | None = None
    body: str | None = None
    response_json: str | None = None


class Interactive(_Wire):
    type: str | None = None
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    nfm_reply: NfmReply | None = None


class QuickReplyButton(_Wire):
    """A tap on a template's quick-reply button (message ``type: button``)."""

    payload: str | None = None
    text: str | None = None


class Media(_Wire):
    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None
    animated: bool | None = None
    url: str | None = None


class Location(_Wire):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class SharedContactName(_Wire):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class SharedContact(_Wire):
    """One card of a ``contacts`` message (a contact the customer shared)."""

    name: SharedContactName | None = None


class Reaction(_Wire):
    message_id: str | None = None
    emoji: str | None = None  # empty or absent: the reaction was removed


class Unsupported(_Wire):
    type: str | None = None


class System(_Wire):
    """``user_changed_number`` (``wa_id`` is the new number; the message is ``from``
    the old one), or ``user_preference_changed`` with ``marketing``."""

    type: str | None = None
    body: str | None = None
    wa_id: str | None = None
    marketing: str | None = None


class InboundMessage(_Raw):
    """``value.messages[]``: one message a customer sent."""

    id: Id
    from_: WaId | None = Field(default=None, alias="from")
    from_user_id: UserId = None
    group_id: Id | None = None
    """Set when the message was written in a group the business is in: ``from`` is the
    member who wrote it, and it is not a one-to-one conversation."""
    timestamp: Timestamp | None = None
    type: Id
    context: Context | None = None
    text: Text | None = None
    interactive: Interactive | None = None
    button: QuickReplyButton | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: tuple[SharedContact, ...] | None = None
    reaction: Reaction | None = None
    unsupported: Unsupported | None = None
    system: System | None = None
    errors: tuple[WhatsAppError, ...] = ()

    @model_validator(mode="after")
    def _has_a_sender(self) -> InboundMessage:
        if self.from_ is None and self.from_user_id is None:
            raise ValueError(
                "a message needs a sender: 'from' (a phone number) or 'from_user_id' "
                "(a business-scoped user id)"
            )
        return self

    @property
    def media(self) -> Media | None:
        value = getattr(self, self.type, None) if self.type in MEDIA_TYPES else None
        return value if isinstance(value, Media) else None


MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})


# Statuses and preferences ------------------------------------------------------------


class Pricing(_Wire):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class ConversationOrigin(_Wire):
    type: str | None = None


class StatusConversation(_Wire):
    id: str | None = None
    expiration_timestamp: str | None = None
    origin: ConversationOrigin | None = None


class StatusUpdate(_Raw):
    """``value.statuses[]``: what became of a message we sent (``id`` is its wamid)."""

    id: Id
    status: Id
    timestamp: Timestamp | None = None
    recipient_id: str | None = None
    recipient_user_id: UserId = None
    errors: tuple[WhatsAppError, ...] = ()
    pricing: Pricing | None = None
    conversation: StatusConversation | None = None
    biz_opaque_callback_data: str | None = None


class UserPreference(_Wire):
    """``value.user_preferences[]``: the customer stopped or resumed marketing messages
    in WhatsApp's own settings (``category: marketing_messages``)."""

    wa_id: WaId | None = None
    user_id: UserId = None
    category: str | None = None
    value: str | None = None
    detail: str | None = None
    timestamp: Timestamp | None = None


class Metadata(_Wire):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item of a notification that was left out: ``where`` it was (in its value,
    e.g. ``messages[1].from``), what ``kind`` of item, and why (``reason``)."""

    where: str
    kind: str
    reason: str


_ITEMS: dict[str, tuple[str, type[BaseModel]]] = {
    # list in the value: (the kind of item, its model)
    "contacts": ("contact", WebhookContact),
    "messages": ("message", InboundMessage),
    "statuses": ("status", StatusUpdate),
    "errors": ("error", WhatsAppError),
    "user_preferences": ("user_preference", UserPreference),
}
_SCALARS: dict[str, Any] = {
    "messaging_product": TypeAdapter(str | None),
    "metadata": TypeAdapter(Metadata | None),
}


def _read_items(data: Any) -> dict[str, Any]:
    """The value's items read one by one; what does not validate goes to
    ``skipped_items`` (the rest of the value is kept)."""
    if not isinstance(data, dict):
        return {"skipped_items": (Skipped("value", "value", "must be a JSON object"),)}
    kept = dict(data)
    skipped: list[Skipped] = []
    for key, (kind, model) in _ITEMS.items():
        if key not in data:
            continue
        items = data[key]
        if not isinstance(items, list | tuple):
            del kept[key]
            skipped.append(Skipped(key, kind, "must be a JSON array"))
            continue
        good: list[BaseModel] = []
        for index, item in enumerate(items):
            try:
                good.append(model.model_validate(item))
            except ValidationError as error:
                where, reason = _first_issue(error)
                skipped.append(Skipped(f"{key}[{index}]{where}", kind, reason))
        kept[key] = tuple(good)
    for key, adapter in _SCALARS.items():
        if key in data:
            try:
                kept[key] = adapter.validate_python(data[key])
            except ValidationError as error:
                del kept[key]
                where, reason = _first_issue(error)
                skipped.append(Skipped(f"{key}{where}", "value", reason))
    kept["skipped_items"] = tuple(skipped)
    return kept


class Value(_Wire):
    messaging_product: str | None = None
    metadata: Metadata | None = None
    contacts: tuple[WebhookContact, ...] = ()
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    errors: tuple[WhatsAppError, ...] = ()
    user_preferences: tuple[UserPreference, ...] = ()
    skipped_items: tuple[SkipValidation[Skipped], ...] = Field(default=(), exclude=True)
    """The items left out because they do not validate."""

    @model_validator(mode="before")
    @classmethod
    def _one_item_at_a_time(cls, data: Any) -> Any:
        return _read_items(data)

    def profile_of(self, message: InboundMessage) -> WebhookContact | None:
        """The ``contacts[]`` entry describing the sender of ``message``."""
        for contact in self.contacts:
            if (message.from_ is not None and contact.wa_id == message.from_) or (
                message.from_user_id is not None and contact.user_id == message.from_user_id
            ):
                return contact
        return self.contacts[0] if len(self.contacts) == 1 else None


# The envelope ------------------------------------------------------------------------


class MessagesChange(_Wire):
    field: str
    value: Value = Field(default_factory=Value)


class OtherChange(_Wire):
    """A change of a field we do not act on; its ``value`` is kept as it came."""

    field: Any = None
    value: Any = None


def _change_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        field = data.get("field")
        return (
            "messages-change"
            if isinstance(field, str) and field in MESSAGE_FIELDS
            else ("other-change")
        )
    if isinstance(data, BaseModel):
        return "messages-change" if isinstance(data, MessagesChange) else "other-change"
    return None


Change = Annotated[
    Annotated[MessagesChange, Tag("messages-change")] | Annotated[OtherChange, Tag("other-change")],
    Discriminator(_change_kind),
]
_TAGS = frozenset({"messages-change", "other-change"})


class Entry(_Wire):
    id: Any = None
    changes: tuple[Change, ...] = ()


class Notification(_Wire):
    object: str
    entry: tuple[Entry, ...]

    def values(self) -> Iterator[Value]:
        for entry in self.entry:
            for change in entry.changes:
                if isinstance(change, MessagesChange):
                    yield change.value

    def inbound_messages(self) -> Iterator[tuple[Value, InboundMessage]]:
        for value in self.values():
            for message in value.messages:
                yield value, message

    def skipped(self) -> Iterator[Skipped]:
        """Every item left out, ``where`` from the top of the notification."""
        for e, entry in enumerate(self.entry):
            for c, change in enumerate(entry.changes):
                if isinstance(change, MessagesChange):
                    for item in change.value.skipped_items:
                        where = f"entry[{e}].changes[{c}].{item.where}"
                        if item.where != "value":
                            where = f"entry[{e}].changes[{c}].value.{item.where}"
                        yield Skipped(where, item.kind, item.reason)

    def template_changes(self) -> Iterator[TemplateChange]:
        """What the template webhooks (status, quality, category updates) say."""
        for entry in self.entry:
            for change in entry.changes:
                if isinstance(change, OtherChange) and isinstance(change.field, str):
                    found = template_change(change.field, change.value)
                    if found is not None:
                        yield found

    @property
    def counts(self) -> tuple[int, int]:
        """How many messages and statuses it carries."""
        values = list(self.values())
        return sum(len(v.messages) for v in values), sum(len(v.statuses) for v in values)


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in _TAGS:
            path += f".{part}" if path else part
    return path or "body"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_json(raw: bytes) -> Any:
    """The body as JSON; ``ValueError`` when it is not.

    JSON may escape half of a UTF-16 pair (``"\\ud83d"``, an emoji cut in two); such
    halves cannot be stored as text, so they become U+FFFD rather than refuse the
    notification.

    >>> decode_json(b'{"name": "Ann \\\\ud83d"}')
    {'name': 'Ann \ufffd'}
    """
    try:
        data = json.loads(raw)
        if b"\\ud" in raw or b"\\uD" in raw:
            data = _mend(data)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    return data


def _mend(data: Any) -> Any:
    if isinstance(data, str):
        return _LONE_SURROGATE.sub("\ufffd", data)
    if isinstance(data, list):
        return [_mend(item) for item in data]
    if isinstance(data, dict):
        return {_mend(key): _mend(value) for key, value in data.items()}
    return data


def _message(issue: Any) -> str:
    if issue["type"] in ("union_tag_not_found", "union_tag_invalid"):
        return "must be a JSON object"
    if issue["type"] == "tuple_type":
        return "must be a JSON array"
    return str(issue["msg"]).removeprefix("Value error, ")


def _first_issue(error: ValidationError) -> tuple[str, str]:
    """Where (a suffix such as ``.from``) and what the first problem of an item is."""
    first = error.errors(include_url=False)[0]
    where = _location(tuple(first["loc"]))
    return ("" if where == "body" else f".{where}" if not where.startswith("[") else where), (
        _message(first)
    )


def parse_notification(data: Any) -> Notification:
    """Read a decoded JSON body; :class:`InvalidNotification` names what is wrong."""
    if not isinstance(data, dict):
        raise InvalidNotification("body", "a notification is a JSON object")
    try:
        return Notification.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise InvalidNotification(_location(tuple(first["loc"])), _message(first)) from None


def read_notification(raw: bytes) -> Notification:
    """A request body as a notification: :class:`InvalidNotification` when it is JSON
    but not a notification, another ``ValueError`` when it is not JSON.

    A valid notification, nearly every one, is read in one pass over the bytes; any
    other body takes the two steps (:func:`decode_json`, :func:`parse_notification`),
    which say what is wrong, or read what the one pass does not (halves of UTF-16
    pairs, ``NaN``).
    """
    if b"\\ud" not in raw and b"\\uD" not in raw:
        try:
            return Notification.model_validate_json(raw)
        except ValidationError:
            pass
    return parse_notification(decode_json(raw))


def parse_message(raw: dict[str, Any]) -> InboundMessage:
    """Read back a stored ``messages[]`` item (the store keeps it as it came)."""
    return InboundMessage.model_validate(raw)

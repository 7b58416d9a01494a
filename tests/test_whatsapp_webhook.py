"""Meta's webhook notifications read into models: every fixture, unknown things, bad input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.identity import is_user_id
from engine.whatsapp.webhook import (
    InvalidNotification,
    Notification,
    OtherChange,
    decode_json,
    parse_message,
    parse_notification,
    read_notification,
)
from tests.inbound_support import ANN, WEBHOOKS, first_message, fixture_names, load

COUNTS = {  # fixture: (messages, statuses, user preferences, errors in value)
    "batch": (3, 1, 0, 0),
    "status_delivered": (0, 1, 0, 0),
    "status_failed": (0, 1, 0, 0),
    "status_failed_marketing_stopped": (0, 1, 0, 0),
    "status_played": (0, 1, 0, 0),
    "status_read": (0, 1, 0, 0),
    "status_sent": (0, 1, 0, 0),
    "user_preferences_resume": (0, 0, 1, 0),
    "user_preferences_stop": (0, 0, 1, 0),
    "value_errors": (0, 0, 0, 1),
    # Template webhooks carry none of these (tests/test_whatsapp_templates.py).
    "template_category_impending": (0, 0, 0, 0),
    "template_category_update": (0, 0, 0, 0),
    "template_quality_update": (0, 0, 0, 0),
    "template_status_disabled": (0, 0, 0, 0),
    "template_status_paused": (0, 0, 0, 0),
    "template_status_reinstated": (0, 0, 0, 0),
}


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_parses_and_keeps_each_message_as_it_came(name: str) -> None:
    data = load(name)
    notification = parse_notification(data)
    values = list(notification.values())
    counts = (
        sum(len(v.messages) for v in values),
        sum(len(v.statuses) for v in values),
        sum(len(v.user_preferences) for v in values),
        sum(len(v.errors) for v in values),
    )
    assert counts == COUNTS.get(name, (1, 0, 0, 0))
    raws = [
        message
        for entry in data["entry"]
        for change in entry["changes"]
        for message in change["value"].get("messages", [])
    ]
    assert [m.raw for _, m in notification.inbound_messages()] == raws
    for _, message in notification.inbound_messages():
        assert parse_message(message.raw) == message


def test_a_text_message_reads_its_sender_profile_and_time() -> None:
    notification = parse_notification(load("text"))
    [(value, message)] = list(notification.inbound_messages())
    assert message.from_ == "16505551234"
    assert message.timestamp == datetime(2026, 3, 2, 8, 59, tzinfo=UTC)
    assert message.text is not None
    assert message.text.body == "Hi, do you ship to Canada?"
    profile = value.profile_of(message)
    assert profile is not None
    assert profile.profile is not None
    assert profile.profile.name == "Sheena Nelson"
    assert value.metadata is not None
    assert value.metadata.phone_number_id == "106540352242922"


def test_a_business_scoped_user_without_a_phone_number_parses() -> None:
    [(value, message)] = list(parse_notification(load("business_scoped_user")).inbound_messages())
    assert message.from_ is None
    assert message.from_user_id == "US.13491208655302741918"
    profile = value.profile_of(message)
    assert profile is not None
    assert (profile.wa_id, profile.user_id) == (None, "US.13491208655302741918")
    assert profile.profile is not None
    assert profile.profile.username == "pablo.m"


def test_unknown_types_and_fields_are_kept() -> None:
    [(_, message)] = list(parse_notification(load("unknown_type")).inbound_messages())
    assert message.type == "poll"
    assert message.model_extra is not None
    assert message.model_extra["poll"]["question"] == "Which colour?"
    assert message.model_extra["future_field"] == {"added": "later"}


def test_statuses_errors_and_other_fields_parse() -> None:
    [update] = next(parse_notification(load("status_failed_marketing_stopped")).values()).statuses
    assert (update.status, update.recipient_id) == ("failed", "16505551234")
    assert update.errors[0].code == 131050
    assert "stop receiving marketing messages" in update.errors[0].describe()

    sent = next(parse_notification(load("status_sent")).values()).statuses[0]
    assert sent.pricing is not None
    assert (sent.pricing.pricing_model, sent.pricing.category) == ("PMP", "marketing")
    assert sent.conversation is not None
    assert sent.conversation.origin is not None
    assert sent.conversation.origin.type == "marketing"

    changes = parse_notification(load("batch")).entry[0].changes
    kinds = [type(change).__name__ for change in changes]
    assert kinds == ["MessagesChange", "MessagesChange", "OtherChange"]
    assert isinstance(changes[2], OtherChange)
    assert changes[2].value["event"] == "APPROVED"

    [preference] = next(parse_notification(load("user_preferences_stop")).values()).user_preferences
    assert (preference.category, preference.value) == ("marketing_messages", "stop")


def with_first_message(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(load("text"))
    message = first_message(data)
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ("not an object", "body", "a notification is a JSON object"),
        ({"object": "whatsapp_business_account"}, "entry", "Field required"),
        ({"object": "whatsapp_business_account", "entry": {}}, "entry", "must be a JSON array"),
        ({"entry": []}, "object", "Field required"),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [7]}]},
            "entry[0].changes[0]",
            "must be a JSON object",
        ),
    ],
)
def test_what_is_wrong_with_the_envelope_is_named(data: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidNotification) as raised:
        parse_notification(data)
    assert raised.value.field == field
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("changes", "where", "reason"),
    [
        (
            {"from": "+1 650 555 1234"},
            "messages[0].from",
            "'+1 650 555 1234' is not a phone number (E.164 digits without '+')",
        ),
        (
            {"from": "99912345678"},
            "messages[0].from",
            "'99912345678' is not a phone number (unknown country code)",
        ),
        (
            {"from": None},
            "messages[0]",
            "a message needs a sender: 'from' (a phone number) or 'from_user_id' "
            "(a business-scoped user id)",
        ),
        (
            {"from": None, "from_user_id": "foo_bar"},
            "messages[0]",
            "a message needs a sender: 'from' (a phone number) or 'from_user_id' "
            "(a business-scoped user id)",
        ),
        ({"id": None}, "messages[0].id", "Field required"),
        ({"timestamp": "yesterday"}, "messages[0].timestamp", None),
        ({"timestamp": 10**30}, "messages[0].timestamp", None),
        ({"type": {"nested": ["junk"]}}, "messages[0].type", None),
    ],
)
def test_an_item_that_does_not_validate_is_left_out_and_named(
    changes: dict[str, Any], where: str, reason: str | None
) -> None:
    data = with_first_message(**changes)
    good = copy.deepcopy(first_message(load("text")))
    data["entry"][0]["changes"][0]["value"]["messages"].append({**good, "id": "wamid.good"})
    note = parse_notification(data)
    assert [m.id for _, m in note.inbound_messages()] == ["wamid.good"]
    [skipped] = note.skipped()
    assert skipped.where == f"entry[0].changes[0].value.{where}"
    assert skipped.kind == "message"
    if reason is not None:
        assert skipped.reason == reason


def test_a_timestamp_without_a_zone_is_utc() -> None:
    note = parse_notification(with_first_message(timestamp="2024-01-01T00:00:00"))
    [(_, message)] = note.inbound_messages()
    assert message.timestamp == datetime(2024, 1, 1, tzinfo=UTC)


def test_only_business_scoped_user_ids_are_kept() -> None:
    data = with_first_message(from_user_id="foo_bar")
    data["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "foo_bar"
    value = next(parse_notification(data).values())
    assert (value.messages[0].from_, value.messages[0].from_user_id) == (ANN, None)
    assert value.contacts[0].user_id is None
    assert is_user_id("US.13491208655302741918")
    assert not any(map(is_user_id, ["foo_bar", "us.1", "US.", "US.12-a", "USA.1", "5678"]))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def parse_or_refuse(data: Any) -> Notification | InvalidNotification:
    """Anything but these two outcomes (a TypeError, a crash) fails the test."""
    try:
        return parse_notification(data)
    except InvalidNotification as error:
        return error


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_random_json_is_a_notification_or_an_invalid_notification(data: Any) -> None:
    outcome = parse_or_refuse(data)
    if isinstance(outcome, InvalidNotification):
        assert outcome.field
        assert outcome.message


def put(data: Any, path: list[int], value: Any) -> Any:
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copied = copy.copy(data)
    copied[key] = put(data[key], path[1:], value)
    return copied


@settings(max_examples=500, deadline=None)
@given(
    name=st.sampled_from(fixture_names()),
    edits=st.lists(
        st.tuples(st.lists(st.integers(min_value=0, max_value=20), max_size=10), JSON),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_fixtures_parse_or_name_what_is_wrong(
    name: str, edits: list[tuple[list[int], Any]]
) -> None:
    data: Any = load(name)
    for path, value in edits:
        data = put(data, path, value)
    outcome = parse_or_refuse(data)
    if isinstance(outcome, InvalidNotification):
        assert outcome.field
    else:
        for _, message in outcome.inbound_messages():
            assert message.from_ or message.from_user_id


@pytest.mark.parametrize("name", fixture_names())
def test_reading_the_bytes_in_one_pass_gives_what_the_two_steps_give(name: str) -> None:
    raw = (WEBHOOKS / f"{name}.json").read_bytes()
    assert read_notification(raw) == parse_notification(decode_json(raw))


def test_reading_a_body_that_is_not_json_is_not_an_invalid_notification() -> None:
    with pytest.raises(ValueError, match="Expecting") as raised:
        read_notification(b'{"object": "x", "entry": [')
    assert not isinstance(raised.value, InvalidNotification)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"[1, 2]", "body: a notification is a JSON object"),
        (b'{"object": "whatsapp_business_account"}', "entry: Field required"),
    ],
)
def test_reading_json_that_is_not_a_notification_names_the_problem(raw: bytes, error: str) -> None:
    with pytest.raises(InvalidNotification) as raised:
        read_notification(raw)
    assert str(raised.value) == error


def test_reading_mends_halves_of_utf16_pairs_and_takes_nan() -> None:
    body = load("text")
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = "Ann \ud83d"
    raw = json.dumps(body).encode()
    assert b"Ann \\ud83d" in raw  # JSON escapes the lone half
    notification = read_notification(raw)
    contact = notification.entry[0].changes[0].value.contacts[0]
    assert contact.profile is not None
    assert contact.profile.name == "Ann \ufffd"
    odd = raw.replace(b'"messaging_product"', b'"score": NaN, "messaging_product"')
    assert read_notification(odd).entry[0].id == notification.entry[0].id


# Who a message or status names, over Meta's sample shapes (fixtures) and their user-id
# variants: (fixture, edit of the first message or status, expected names).
def _edit_message(**fields: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        message = data["entry"][0]["changes"][0]["value"]["messages"][0]
        for key, value in fields.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value

    return edit


IDENTITY_TABLE: list[tuple[str, Any, tuple[str | None, str | None, str | None, str | None]]] = [
    # (fixture, edit, (from, from_user_id, contacts[0].wa_id, contacts[0].user_id))
    ("text", None, ("16505551234", None, "16505551234", None)),
    (
        "business_scoped_user",
        None,
        (None, "US.13491208655302741918", None, "US.13491208655302741918"),
    ),
    (
        "business_scoped_user_with_phone",
        None,
        ("919810218674", "IN.1410018717833190", "919810218674", "IN.1410018717833190"),
    ),
    # An enterprise's shared id, and an alphanumeric one, are user ids too.
    (
        "business_scoped_user",
        _edit_message(from_user_id="US.ENT.11815799212886844830"),
        (None, "US.ENT.11815799212886844830", None, "US.13491208655302741918"),
    ),
    (
        "business_scoped_user",
        _edit_message(from_user_id="BR.15025a7639"),
        (None, "BR.15025a7639", None, "US.13491208655302741918"),
    ),
    # A system notice has no contacts[] (Meta: "don't include a contacts array").
    ("system_user_changed_number", None, ("16505551234", None, None, None)),
]


@pytest.mark.parametrize(("fixture", "edit", "expected"), IDENTITY_TABLE)
def test_who_a_message_names(fixture: str, edit: Any, expected: tuple[str | None, ...]) -> None:
    data = copy.deepcopy(load(fixture))
    if edit is not None:
        edit(data)
    [(value, message)] = list(parse_notification(data).inbound_messages())
    contact = value.contacts[0] if value.contacts else None
    assert (
        message.from_,
        message.from_user_id,
        contact.wa_id if contact else None,
        contact.user_id if contact else None,
    ) == expected


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"from": None, "from_user_id": None}, "messages[0]"),  # neither: left out, not a 5xx
        ({"from": None, "from_user_id": "US.12-3"}, "messages[0]"),  # not a user id
    ],
)
def test_a_message_naming_no_one_is_left_out_and_said_where(
    fields: dict[str, Any], where: str
) -> None:
    data = copy.deepcopy(load("business_scoped_user"))
    _edit_message(**fields)(data)
    notification = parse_notification(data)
    assert list(notification.inbound_messages()) == []
    [skipped] = list(notification.skipped())
    assert skipped.where.endswith(where)
    assert "needs a sender" in skipped.reason


def test_a_status_to_a_user_id_names_it() -> None:
    data = copy.deepcopy(load("status_delivered"))
    status = data["entry"][0]["changes"][0]["value"]["statuses"][0]
    del status["recipient_id"]
    status["recipient_user_id"] = "US.13491208655302741918"
    [update] = next(parse_notification(data).values()).statuses
    assert (update.recipient_id, update.recipient_user_id) == (None, "US.13491208655302741918")

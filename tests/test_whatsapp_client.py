"""The Cloud API client: Meta's send bodies, and typed answers from a real server on loopback."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.devtools.simulator import FailureRule, Simulator, create_simulator_app
from engine.models.content import (
    ButtonsContent,
    ListContent,
    ListRow,
    ListSection,
    MediaContent,
    MediaType,
    ReplyButton,
    TemplateContent,
    TextContent,
)
from engine.models.template import Template
from engine.whatsapp.client import Accepted, CloudApiClient
from engine.whatsapp.send import SendBody, build_send_body, wire_json
from engine.whatsapp.send_errors import (
    CloudApiWindowClosed,
    Rejected,
    SendError,
    Throttled,
    Unavailable,
    classify,
)
from tests.conftest import FIXTURES

ANSWERS: dict[str, Any] = json.loads((FIXTURES / "cloud_api" / "send_answers.json").read_text())
PHONE_NUMBER_ID = "100000000000001"
SPRING_SALE = Template.model_validate(
    {
        "name": "spring_sale",
        "language": "en_US",
        "category": "MARKETING",
        "header": "Spring sale",
        "body": "Hi {{1}}, {{2}} off everything.",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Shop now", "payload": "SHOP_NOW"},
            {"type": "QUICK_REPLY", "text": "Stop promotions", "payload": "STOP_PROMOTIONS"},
        ],
    }
)
LOGIN_CODE = Template.model_validate(
    {
        "name": "login_code",
        "language": "en_US",
        "category": "AUTHENTICATION",
        "body": "{{1}} is your verification code.",
        "buttons": [
            {
                "type": "URL",
                "text": "Copy code",
                "url": "https://www.whatsapp.com/otp/code/?code={{1}}",
            }
        ],
    }
)


def wire(body: SendBody) -> dict[str, Any]:
    return json.loads(wire_json(body))  # type: ignore[no-any-return]


def test_text_body() -> None:
    body = build_send_body(
        "16505551234", TextContent(body="Hello", preview_url=True), reference="m1"
    )
    assert wire(body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"body": "Hello", "preview_url": True},
        "biz_opaque_callback_data": "m1",
    }


def test_template_body_with_quick_reply_payloads() -> None:
    content = TemplateContent(name="spring_sale", language="en_US", params=("Ann", "20%"))
    body = wire(build_send_body("16505551234", content, template=SPRING_SALE))
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "spring_sale",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "20%"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": "SHOP_NOW"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "1",
                "parameters": [{"type": "payload", "payload": "STOP_PROMOTIONS"}],
            },
        ],
    }


def test_authentication_template_fills_the_url_button_with_the_code() -> None:
    content = TemplateContent(name="login_code", language="en_US", params=("482910",))
    components = wire(build_send_body("16505551234", content, template=LOGIN_CODE))["template"][
        "components"
    ]
    assert components[1] == {
        "type": "button",
        "sub_type": "url",
        "index": "0",
        "parameters": [{"type": "text", "text": "482910"}],
    }


def test_template_without_parameters_or_catalogue_entry() -> None:
    content = TemplateContent(name="hello_world", language="en_US")
    assert wire(build_send_body("16505551234", content))["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


def test_interactive_buttons_and_list_bodies() -> None:
    buttons = ButtonsContent(
        body="Did it arrive?",
        header="Order A-17",
        footer="Reply any time",
        buttons=(ReplyButton(id="yes", title="Yes"), ReplyButton(id="no", title="No")),
    )
    assert wire(build_send_body("16505551234", buttons))["interactive"] == {
        "type": "button",
        "header": {"type": "text", "text": "Order A-17"},
        "body": {"text": "Did it arrive?"},
        "footer": {"text": "Reply any time"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
            ]
        },
    }
    menu = ListContent(
        body="Pick a size",
        button="Sizes",
        sections=(
            ListSection(
                title="Shirts",
                rows=(
                    ListRow(id="s", title="Small"),
                    ListRow(id="m", title="Medium", description="Most popular"),
                ),
            ),
        ),
    )
    assert wire(build_send_body("16505551234", menu))["interactive"] == {
        "type": "list",
        "body": {"text": "Pick a size"},
        "action": {
            "button": "Sizes",
            "sections": [
                {
                    "title": "Shirts",
                    "rows": [
                        {"id": "s", "title": "Small"},
                        {"id": "m", "title": "Medium", "description": "Most popular"},
                    ],
                }
            ],
        },
    }


def test_media_bodies() -> None:
    image = MediaContent(media_type=MediaType.IMAGE, link="https://example.com/a.jpg", caption="Hi")
    document = MediaContent(
        media_type=MediaType.DOCUMENT,
        link="https://example.com/a.pdf",
        filename="a.pdf",
        caption="Bill",
    )
    sticker = MediaContent(media_type=MediaType.STICKER, media_id="1013859600285441", caption="x")
    assert wire(build_send_body("16505551234", image))["image"] == {
        "link": "https://example.com/a.jpg",
        "caption": "Hi",
    }
    assert wire(build_send_body("16505551234", document))["document"] == {
        "link": "https://example.com/a.pdf",
        "caption": "Bill",
        "filename": "a.pdf",
    }
    assert wire(build_send_body("16505551234", sticker))["sticker"] == {"id": "1013859600285441"}


def test_a_username_contact_is_addressed_by_recipient() -> None:
    body = wire(build_send_body("US.13491208655302741918", TextContent(body="Hi")))
    assert body["recipient"] == "US.13491208655302741918"
    assert "to" not in body


@pytest.mark.parametrize(
    ("answer", "kind", "code", "retryable"),
    [
        ("throughput_limit", Throttled, 130429, True),
        ("pair_rate_limit", Throttled, 131056, True),
        ("template_missing", Rejected, 132001, False),
        ("window_closed", CloudApiWindowClosed, 131047, False),
        ("invalid_parameter", Rejected, 100, False),
        ("token_expired", Rejected, 190, False),
        ("something_went_wrong", Unavailable, 131000, True),
    ],
)
def test_metas_error_answers_are_typed(
    answer: str, kind: type[SendError], code: int, retryable: bool
) -> None:
    fixture = ANSWERS[answer]
    error = classify(fixture["status"], json.dumps(fixture["body"]).encode())
    assert type(error) is kind
    assert (error.code, error.retryable) == (code, retryable)
    assert error.failure().code == str(code)
    assert not error.failure().reason.startswith("(#")


def test_error_reason_carries_title_and_details() -> None:
    fixture = ANSWERS["template_missing"]
    error = classify(404, json.dumps(fixture["body"]).encode())
    assert error.failure().reason == (
        "Template name does not exist in the translation: "
        "template name (hello_world1) does not exist in en_US"
    )


def test_answers_without_an_envelope() -> None:
    assert isinstance(classify(429, b""), Throttled)
    assert isinstance(classify(502, b"<html>Bad gateway</html>"), Unavailable)
    refused = classify(403, b"Forbidden")
    assert isinstance(refused, Rejected)
    assert refused.failure().code == "http_403"


@pytest.fixture
async def simulator_url(aiohttp_server: Any, clock: FrozenClock) -> tuple[str, Simulator]:
    simulator = Simulator(store=None, clock=clock, phone_number_id=PHONE_NUMBER_ID)
    server = await aiohttp_server(create_simulator_app(simulator, api_token=None))
    return str(server.make_url("/simulator")), simulator


async def test_the_client_against_the_simulator(simulator_url: tuple[str, Simulator]) -> None:
    base, simulator = simulator_url
    async with aiohttp.ClientSession() as session:
        client = CloudApiClient(
            session, graph_base=base, api_version="v21.0", access_token="t", timeout_seconds=0.3
        )
        body = build_send_body("16505551234", TextContent(body="Hi"))
        accepted = await client.send(PHONE_NUMBER_ID, body)
        assert isinstance(accepted, Accepted)
        assert accepted.wamid.startswith("wamid.")
        assert accepted.wa_id == "16505551234"
        [received] = simulator.received()
        assert received.wamid == accepted.wamid

        wrong_number = CloudApiClient(
            session, graph_base=base, api_version="v21.0", access_token=""
        )
        with pytest.raises(Rejected) as unauthorised:
            await wrong_number.send(PHONE_NUMBER_ID, body)
        assert (unauthorised.value.code, unauthorised.value.http_status) == (190, 401)

        for code, kind in [(130429, Throttled), (503, Unavailable), ("garbage", Unavailable)]:
            simulator.add_failure(FailureRule(to="16505551234", code=code, times=1))
            with pytest.raises(kind) as failed:
                await client.send(PHONE_NUMBER_ID, body)
            assert failed.value.retryable
        assert failed.value.ambiguous, "a 200 without a wamid may mean Meta took it"

        simulator.add_failure(
            FailureRule(to="16505551234", code="timeout", times=1, hold_seconds=1)
        )
        with pytest.raises(Unavailable) as timed_out:
            await client.send(PHONE_NUMBER_ID, body)
        assert (timed_out.value.code, timed_out.value.ambiguous) == ("timeout", True)

        nowhere = CloudApiClient(
            session,
            graph_base=f"http://127.0.0.1:{free_port()}",
            api_version="v21.0",
            access_token="t",
        )
        with pytest.raises(Unavailable) as refused:
            await nowhere.send(PHONE_NUMBER_ID, body)
        assert (refused.value.code, refused.value.ambiguous) == ("connection_failed", False)


async def test_every_page_of_the_templates_is_read(aiohttp_server: Any, clock: FrozenClock) -> None:
    from engine.catalogue import load_templates
    from engine.whatsapp.templates import template_from_meta

    simulator = Simulator(
        store=None,
        clock=clock,
        phone_number_id=PHONE_NUMBER_ID,
        templates_file=FIXTURES / "templates.yaml",
    )
    server = await aiohttp_server(create_simulator_app(simulator, api_token=None))
    in_file = load_templates(FIXTURES / "templates.yaml")
    assert len(in_file) > 4, "several pages of two"
    async with aiohttp.ClientSession() as session:
        client = CloudApiClient(
            session,
            graph_base=str(server.make_url("/simulator")),
            api_version="v21.0",
            access_token="t",
        )
        listed = await client.message_templates(simulator.waba_id, page_size=2)
        assert [(t["name"], t["language"]) for t in listed] == [
            (t.name, t.language) for t in in_file
        ]
        assert len({t["id"] for t in listed}) == len(in_file)
        # Quick-reply payloads are ours (Meta's template has none): kept from the file.
        read = [template_from_meta(t, local=f) for t, f in zip(listed, in_file, strict=True)]
        assert [t.model_dump(exclude={"id", "components"}) for t in read] == [
            t.model_dump(exclude={"id", "components"}) for t in in_file
        ]
        # One page short of the end, Meta gives no next page; one page in all.
        assert len(await client.message_templates(simulator.waba_id, page_size=100)) == len(in_file)
        with pytest.raises(Rejected) as unknown_account:
            await client.message_templates("999")
        assert unknown_account.value.code == 100


async def test_the_marketing_messages_api_of_the_simulator(
    simulator_url: tuple[str, Simulator],
) -> None:
    from engine.whatsapp.send_errors import MarketingNotOnboarded

    base, simulator = simulator_url
    async with aiohttp.ClientSession() as session:
        client = CloudApiClient(session, graph_base=base, api_version="v21.0", access_token="t")
        body = build_send_body("16505551234", TextContent(body="Hi"))
        with pytest.raises(Rejected) as not_a_template:
            await client.send(PHONE_NUMBER_ID, body, marketing=True)
        assert not isinstance(not_a_template.value, MarketingNotOnboarded)
        simulator.marketing_onboarded = False
        with pytest.raises(MarketingNotOnboarded) as refused:
            await client.send(PHONE_NUMBER_ID, body, marketing=True)
        assert "onboarded" in refused.value.reason
        assert [r.endpoint for r in simulator.received()] == ["marketing_messages"] * 2

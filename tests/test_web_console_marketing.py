"""The marketers' side of the console over HTTP, against the real application and store:
roles and navigation, CSRF, the new-broadcast form (the opt-in checkbox, its
acknowledgement, field errors as the API names them, one broadcast per form however often
it is submitted), a broadcast's page, its live progress stream, contacts (search, filters,
CSV import with bad lines, the contact page), sequences (builder, versions, enrolment)
and reports (failures by reason, CSV)."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from engine.campaigns import broadcasts as campaign_broadcasts
from engine.clock import FrozenClock
from engine.models import Channel, Failure, MessageStatus
from engine.models.content import TemplateContent
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.store import Tx
from tests.conftest import AUTH, make_app, make_settings
from tests.desk import PASSWORD, Client, add_agent, add_contact, store_of

MARK = "mark@example.com"
ANN = "ann@example.com"
ADA = "ada@example.com"
OPT_IN_LABEL = "Send message to contacts who opted-in for marketing"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def number(index: int) -> str:
    return f"1650555{index:04d}"


async def sign_in(client: Client, email: str, role: str) -> str:
    """Make the account, sign in through the form, and answer the session's CSRF token."""
    await add_agent(client, email, name=email.split("@")[0].title(), role=role)
    login = await client.get("/console/login")
    match = _CSRF.search(await login.text())
    assert match is not None
    response = await client.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf_token": match[1], "next": "/console"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    page = await client.get("/console/contacts")
    if page.status != 200:
        page = await client.get("/console")
    found = _META.search(await page.text())
    assert found is not None
    return found[1]


async def import_contacts(
    client: Client, token: str, count: int, opted_out: set[int], tag: str = "spring"
) -> str:
    lines = ["phone,name,marketing_opt_in,tags"]
    for index in range(count):
        lines.append(
            f"+1 650 555 {index:04d},Contact {index},{'no' if index in opted_out else 'yes'},{tag}"
        )
    return await upload(client, "/console/contacts/import", token, "\n".join(lines))


async def upload(client: Client, path: str, token: str, content: str) -> str:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", content.encode(), filename="contacts.csv", content_type="text/csv")
    response = await client.post(path, data=form)
    return await response.text()


async def new_form_key(client: Client) -> str:
    page = await client.get("/console/broadcasts/new")
    assert page.status == 200
    found = _FORM_KEY.search(await page.text())
    assert found is not None
    return found[1]


def broadcast_form(token: str, key: str, **fields: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": token,
        "form_key": key,
        "name": "Spring sale",
        "audience": "tags",
        "tags": "spring",
        "tags_match": "any",
        "template": "spring_sale|en_US",
        "param": ["friend", "20%"],
        "opted_in_only": "1",
        "when": "now",
    }
    form.update(fields)
    return form


def multidict(form: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in form.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((key, item))
    return pairs


async def broadcasts(client: Client) -> list[dict[str, Any]]:
    listed = await (await client.get("/api/v1/broadcasts")).json()
    return listed["broadcasts"]  # type: ignore[no-any-return]


# --- roles, navigation, CSRF ------------------------------------------------------------


async def test_a_marketer_gets_the_marketing_sections_and_not_the_conversations(
    client: Client,
) -> None:
    await sign_in(client, MARK, "marketer")
    home = await client.get("/console", allow_redirects=False)
    assert home.status == 303
    assert home.headers["Location"] == "/console/broadcasts"
    page = await client.get("/console/broadcasts")
    text = await page.text()
    assert page.status == 200
    assert re.findall(r'class="section-link[^"]*"[^>]*>([^<]+)<', text) == [
        "Contacts",
        "Broadcasts",
        "Sequences",
        "Reports",
    ]
    for path in ("/console/conversations/16505550001", "/console/api/conversations"):
        refused = await client.get(path)
        assert refused.status == 403, path


async def test_an_agent_keeps_the_conversations_and_is_refused_the_marketing_pages(
    client: Client,
) -> None:
    await sign_in(client, ANN, "agent")
    home = await client.get("/console")
    assert home.status == 200
    assert "section-link" not in await home.text()  # the agents' page as it was
    for path in (
        "/console/broadcasts",
        "/console/broadcasts/new",
        "/console/contacts",
        "/console/sequences",
        "/console/reports",
        "/console/reports/messages.csv",
        "/console/api/live/broadcasts",
    ):
        assert (await client.get(path)).status == 403, path


async def test_an_admin_sees_every_section(client: Client) -> None:
    await sign_in(client, ADA, "admin")
    home = await client.get("/console")
    text = await home.text()
    assert home.status == 200
    assert re.findall(r'class="section-link[^"]*"[^>]*>([^<]+)<', text) == [
        "Conversations",
        "Contacts",
        "Broadcasts",
        "Sequences",
        "Reports",
    ]
    for path in ("/console/broadcasts", "/console/contacts", "/console/reports"):
        assert (await client.get(path)).status == 200, path


async def test_marketing_pages_need_a_session_and_their_forms_the_csrf_token(
    client: Client,
) -> None:
    signed_out = await client.get("/console/broadcasts", allow_redirects=False)
    assert signed_out.status == 303
    assert signed_out.headers["Location"] == "/console/login?next=/console/broadcasts"
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 3, set())
    key = await new_form_key(client)
    forged = broadcast_form("forged", key)
    response = await client.post("/console/broadcasts", data=multidict(forged))
    assert response.status == 403
    assert await broadcasts(client) == []


# --- the new-broadcast form -------------------------------------------------------------


async def test_the_form_offers_the_opt_in_checkbox_checked_and_counts_like_the_api(
    client: Client,
) -> None:
    token = await sign_in(client, MARK, "marketer")
    text = await import_contacts(client, token, 40, {3, 7, 11, 19})
    assert "40 created" in text
    page = await client.get("/console/broadcasts/new")
    form = await page.text()
    assert OPT_IN_LABEL in form
    assert re.search(r'name="opted_in_only" value="1" id="opted-in-only" checked', form)
    assert "Spring sale (en_US)" in form  # templates by their friendly name
    body = {
        "template": {"name": "spring_sale", "language": "en_US", "params": ["a", "b"]},
        "tags": ["spring"],
        "opted_in_only": True,
    }
    counted = await client.post(
        "/console/api/broadcasts/preview", json=body, headers={"X-CSRF-Token": token}
    )
    assert counted.status == 200, await counted.text()
    assert {k: (await counted.json())[k] for k in ("total", "opted_out", "will_send")} == {
        "total": 40,
        "opted_out": 4,
        "will_send": 36,
    }
    api = await client.post("/api/v1/broadcasts/preview", json=body)
    assert (await api.json())["will_send"] == 36
    off = await client.post(
        "/console/api/broadcasts/preview",
        json={**body, "opted_in_only": False},
        headers={"X-CSRF-Token": token},
    )
    answer = await off.json()
    assert answer["will_send"] == 40
    assert "quality rating" in answer["warnings"][0]["message"]
    bad = await client.post(
        "/console/api/broadcasts/preview",
        json={**body, "tags": ["nobody-has-this"]},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["fields"] == [
        {"field": "tags", "message": "no contact matches the audience"}
    ]


async def test_turning_the_checkbox_off_needs_the_acknowledgement(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 10, {2})
    key = await new_form_key(client)
    unacknowledged = broadcast_form(token, key, opted_in_only=None)
    refused = await client.post("/console/broadcasts", data=multidict(unacknowledged))
    text = await refused.text()
    assert refused.status == 422
    assert 'data-field="acknowledge"' in text
    assert "acknowledge: you turned off sending only to contacts who opted in" in text
    assert await broadcasts(client) == []
    acknowledged = broadcast_form(token, key, opted_in_only=None, acknowledge="1")
    made = await client.post("/console/broadcasts", data=multidict(acknowledged))
    assert made.status == 200
    [broadcast] = await broadcasts(client)
    assert str(made.url).endswith(f"/console/broadcasts/{broadcast['id']}")
    assert broadcast["opted_in_only"] is False
    assert broadcast["total"] == 10
    assert broadcast["excluded_opted_out"] == 0
    assert broadcast["warnings"][0]["code"] == "quality_rating_risk"


async def test_a_utility_template_needs_no_acknowledgement(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 3, {1})
    key = await new_form_key(client)
    form = broadcast_form(
        token, key, template="order_update|en_US", param=["A-1", "ready"], opted_in_only=None
    )
    made = await client.post("/console/broadcasts", data=multidict(form))
    assert made.status == 200, await made.text()
    [broadcast] = await broadcasts(client)
    assert broadcast["category"] == "UTILITY"


async def test_form_errors_are_the_api_answers_named_beside_their_fields(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 3, set())
    key = await new_form_key(client)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"name": ""}, "name", "name: String should have at least 1 character"),
        (
            {"audience": "numbers", "contacts": f"{number(1)}\n+1 650 555 9999"},
            "contacts",
            "contacts.1: there is no contact 16505559999; create or import it first",
        ),
        ({"tags": ""}, "tags", "tags: give contacts, tags or attributes: the audience is empty"),
        ({"param": ["only one"]}, "template", "template.params: "),
        ({"template": "no_such|en_US"}, "template", "template"),
        (
            {"when": "later", "send_at": "2020-01-01T09:00"},
            "send_at",
            "send_at: 2020-01-01T09:00:00Z is in the past",
        ),
        ({"attribute_0": "plan", "op_0": "in", "value_0": ""}, "attributes", "attributes.0"),
    ]
    for fields, field, message in cases:
        response = await client.post(
            "/console/broadcasts", data=multidict(broadcast_form(token, key, **fields))
        )
        text = await response.text()
        assert response.status == 422, (fields, text[:300])
        beside = re.findall(
            rf'<p class="field-error" data-field="{field}" role="alert">([^<]*)<', text
        )
        assert any(message in html.unescape(shown) for shown in beside), (fields, beside)
    assert await broadcasts(client) == []


async def test_a_form_submitted_twice_at_once_makes_one_broadcast(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 5, set())
    key = await new_form_key(client)
    form = multidict(broadcast_form(token, key))
    first, second = await asyncio.gather(
        client.post("/console/broadcasts", data=form, allow_redirects=False),
        client.post("/console/broadcasts", data=form, allow_redirects=False),
    )
    assert (first.status, second.status) == (303, 303)
    assert first.headers["Location"] == second.headers["Location"]
    again = await client.post("/console/broadcasts", data=form, allow_redirects=False)
    assert again.headers["Location"] == first.headers["Location"]
    assert len(await broadcasts(client)) == 1
    other = await client.post(
        "/console/broadcasts",
        data=multidict(broadcast_form(token, await new_form_key(client))),
        allow_redirects=False,
    )
    assert other.headers["Location"] != first.headers["Location"]
    assert len(await broadcasts(client)) == 2
    listed = await (await client.get("/console/broadcasts")).text()
    assert len(re.findall(r'<tr data-broadcast="', listed)) == 2


# --- a broadcast's page, actions, report, live progress --------------------------------


async def create_broadcast(client: Client, token: str, **fields: Any) -> str:
    key = await new_form_key(client)
    made = await client.post(
        "/console/broadcasts",
        data=multidict(broadcast_form(token, key, **fields)),
        allow_redirects=False,
    )
    assert made.status == 303, await made.text()
    return str(made.headers["Location"]).rsplit("/", 1)[1]


async def test_a_broadcast_page_pauses_resumes_cancels_and_downloads_its_report(
    client: Client,
) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 6, {4})
    broadcast_id = await create_broadcast(client, token, when="later", send_at="2026-03-03T09:00")
    page = await (await client.get(f"/console/broadcasts/{broadcast_id}")).text()
    assert "Spring sale" in page
    assert "scheduled" in page
    assert "5 to receive" in page
    paused = await client.post(
        f"/console/broadcasts/{broadcast_id}/pause", data={"csrf_token": token}
    )
    assert paused.status == 200
    text = await paused.text()
    assert "Paused through the API" in text or "Paused" in text
    assert (await client.get(f"/api/v1/broadcasts/{broadcast_id}")).status == 200
    state = (await (await client.get(f"/api/v1/broadcasts/{broadcast_id}")).json())["state"]
    assert state == "paused"
    await client.post(f"/console/broadcasts/{broadcast_id}/resume", data={"csrf_token": token})
    state = (await (await client.get(f"/api/v1/broadcasts/{broadcast_id}")).json())["state"]
    assert state == "scheduled"
    await client.post(f"/console/broadcasts/{broadcast_id}/cancel", data={"csrf_token": token})
    state = (await (await client.get(f"/api/v1/broadcasts/{broadcast_id}")).json())["state"]
    assert state == "cancelled"
    again = await client.post(
        f"/console/broadcasts/{broadcast_id}/pause", data={"csrf_token": token}
    )
    assert again.status == 409  # the API's refusal, shown on the page
    report = await client.get(f"/console/broadcasts/{broadcast_id}/report.csv")
    assert report.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await report.text())))
    assert rows[0][:3] == ["to", "message_id", "status"]
    missing = await client.get("/console/broadcasts/nope")
    assert missing.status == 404


async def test_the_live_stream_sends_a_broadcasts_progress_as_it_changes(
    client: Client, clock: FrozenClock
) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 2, set())
    broadcast_id = await create_broadcast(client, token)
    store = store_of(client)

    async def queue_one() -> str:
        async def job(tx: Tx) -> str:
            contact = await tx.contacts.get(number(0))
            assert contact is not None
            sent = await enqueue(
                tx,
                OutboundRequest(
                    contact,
                    Channel.BROADCAST,
                    TemplateContent(name="order_update", language="en_US", params=("A", "B")),
                ),
                now=clock.now(),
            )
            assert sent.message is not None
            await tx.broadcasts.add_recipients(broadcast_id, [(contact.id, sent.message.id)])
            return sent.message.id

        return await store.write(job)

    response = await client.get(f"/console/api/live/broadcasts/{broadcast_id}")
    assert response.headers["Content-Type"] == "text/event-stream"

    async def next_event() -> dict[str, Any]:
        while True:
            line = (await asyncio.wait_for(response.content.readline(), 10)).decode()
            if line.startswith("data: "):
                return json.loads(line[6:])  # type: ignore[no-any-return]

    first = await next_event()
    assert first["broadcasts"][0]["counts"]["queued"] == 0
    message_id = await queue_one()
    queued = await next_event()
    assert queued["broadcasts"][0]["counts"]["queued"] == 1

    async def fail(tx: Tx) -> None:
        await tx.messages.change_status(
            message_id,
            MessageStatus.FAILED,
            at=clock.now(),
            failure=Failure(code="131049", reason="Meta chose not to deliver it"),
        )

    await store.write(fail)
    failed = await next_event()
    assert failed["broadcasts"][0]["counts"]["failed"] == 1
    response.close()


async def test_a_broadcast_the_quality_guard_paused_says_why(
    client: Client, clock: FrozenClock
) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 3, set())
    broadcast_id = await create_broadcast(client, token, when="later", send_at="2026-03-03T09:00")
    why = "12 of the first 100 messages failed with 131049 (more than 10%)"

    async def trip(tx: Tx) -> None:
        await campaign_broadcasts.pause(
            tx, broadcast_id, by=campaign_broadcasts.GUARD, reason=why, now=clock.now()
        )

    await store_of(client).write(trip)
    page = await (await client.get(f"/console/broadcasts/{broadcast_id}")).text()
    shown = re.search(r'id="paused-reason" role="status">(.*?)</div>', page, re.S)
    assert shown is not None
    assert "Paused by the quality guard." in shown[1]
    assert why in shown[1]
    assert re.search(r'data-action="resume">', page)  # resume is offered, pause is not
    assert re.search(r'data-action="pause" hidden>', page)


async def test_a_scheduled_send_is_read_in_the_business_time_zone(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, BUSINESS_TIMEZONE="Europe/Madrid")
    client = await aiohttp_client(make_app(settings, clock=clock), headers=AUTH)
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 2, set())
    broadcast_id = await create_broadcast(client, token, when="later", send_at="2026-03-03T09:00")
    made = await (await client.get(f"/api/v1/broadcasts/{broadcast_id}")).json()
    assert made["send_at"] == "2026-03-03T08:00:00Z"  # 09:00 in Madrid is 08:00 UTC in March
    page = await (await client.get(f"/console/broadcasts/{broadcast_id}")).text()
    assert "send at 2026-03-03 09:00 (Europe/Madrid)" in page


def test_an_unknown_business_time_zone_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(tmp_path, BUSINESS_TIMEZONE="Mars/Olympus_Mons")
    [error] = raised.value.errors()
    assert error["loc"] == ("BUSINESS_TIMEZONE",)
    assert "unknown time zone 'Mars/Olympus_Mons'" in error["msg"]


# --- contacts ----------------------------------------------------------------------------


async def test_a_csv_import_shows_each_bad_line_and_why(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    content = (
        "phone,name,marketing_opt_in\n"
        "+1 650 555 0001,Ann,yes\n"
        "not a number,Bob,no\n"
        "+1 650 555 0002,Cy,maybe\n"
    )
    text = await upload(client, "/console/contacts/import", token, content)
    assert "1 created" in text
    assert "line 3: phone: &#39;not a number&#39; is not a valid phone number" in text
    assert re.search(r'data-line="4">line 4: marketing_opt_in', text)
    unreadable = await upload(client, "/console/contacts/import", token, "name\nAnn\n")
    assert 'data-field="file"' in unreadable
    assert "line 1: the header needs a wa_id" in unreadable


async def test_contacts_are_searched_and_filtered_by_tag_and_opt_in(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 6, {1, 2}, tag="spring")
    await add_contact(client, "447911123456", name="Dana_100% Okafor", opted_in=False)

    async def listed(**query: str) -> list[str]:
        text = await (await client.get("/console/contacts", params=query)).text()
        return re.findall(r'<tr data-wa-id="([^"]+)">', text)

    assert len(await listed()) == 7
    assert await listed(q="contact 3") == [number(3)]
    assert await listed(q="dana_100%") == ["447911123456"]  # LIKE wildcards are literal
    assert await listed(q="_") == ["447911123456"]
    assert await listed(q="7911") == ["447911123456"]
    assert await listed(tag="spring", opt_in="no") == [number(1), number(2)]
    assert len(await listed(opt_in="yes")) == 4


async def test_a_contacts_page_changes_tags_attributes_and_opt_in_in_the_marketers_name(
    client: Client,
) -> None:
    token = await sign_in(client, MARK, "marketer")
    await add_contact(client, number(1), name="Ann")
    page = await client.get(f"/console/contacts/{number(1)}")
    assert page.status == 200
    assert 'id="opt-in-toggle"' in await page.text()
    saved = await client.post(
        f"/console/contacts/{number(1)}",
        data={
            "csrf_token": token,
            "name": "Ann Lee",
            "tags": "vip, spring",
            "attributes": '{"city": "Madrid"}',
        },
    )
    assert saved.status == 200
    contact = await (await client.get(f"/api/v1/contacts/{number(1)}")).json()
    assert contact["name"] == "Ann Lee"
    assert contact["tags"] == ["spring", "vip"]
    assert contact["attributes"] == {"city": "Madrid"}
    bad = await client.post(
        f"/console/contacts/{number(1)}",
        data={"csrf_token": token, "name": "Ann", "tags": "", "attributes": "[1, 2"},
    )
    assert bad.status == 422
    assert 'data-field="attributes"' in await bad.text()
    long_tag = await client.post(
        f"/console/contacts/{number(1)}",
        data={"csrf_token": token, "name": "Ann", "tags": "x" * 65, "attributes": "{}"},
    )
    assert long_tag.status == 422
    assert "tags.0: String should have at most 64 characters" in await long_tag.text()
    switched = await client.post(
        f"/console/api/contacts/{number(1)}/opt-in",
        json={"marketing_opt_in": False, "note": "asked by phone"},
        headers={"X-CSRF-Token": token},
    )
    assert switched.status == 200
    last = (await switched.json())["consent"][-1]
    assert (last["actor"], last["note"], last["marketing_opt_in"]) == (
        MARK,
        "asked by phone",
        False,
    )
    history = await (await client.get(f"/console/contacts/{number(1)}")).text()
    assert "asked by phone" in history


# --- sequences ---------------------------------------------------------------------------


def sequence_form(token: str, **fields: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": token,
        "name": "Welcome",
        "window_start": "",
        "window_end": "",
        "step_0_kind": "template",
        "step_0_delay": "0s",
        "step_0_template": "new_arrivals|en_US",
        "step_0_param": ["friend"],
        "step_1_kind": "text",
        "step_1_delay": "1d",
        "step_1_text": "Thanks for staying with us!",
    }
    form.update(fields)
    return form


async def test_the_builder_makes_a_sequence_and_an_edit_a_new_version(client: Client) -> None:
    token = await sign_in(client, MARK, "marketer")
    bad = await client.post(
        "/console/sequences", data=multidict(sequence_form(token, step_1_delay="soon"))
    )
    assert bad.status == 422
    assert re.search(r'data-field="steps.1" role="alert">steps.1.delay: ', await bad.text())
    made = await client.post("/console/sequences", data=multidict(sequence_form(token)))
    assert made.status == 200
    page = await made.text()
    assert "contacts who opted out of marketing will fail this step and move on" in page
    [sequence] = (await (await client.get("/api/v1/sequences")).json())["sequences"]
    assert [step.get("template", {}).get("name") for step in sequence["steps"]] == [
        "new_arrivals",
        None,
    ]
    assert sequence["steps"][1]["delay_seconds"] == 86400
    edit = await client.get(f"/console/sequences/{sequence['id']}/edit")
    assert 'value="1d"' in await edit.text()
    edited = await client.post(
        f"/console/sequences/{sequence['id']}",
        data=multidict(sequence_form(token, window_start="09:00", window_end="18:00")),
    )
    assert edited.status == 200
    again = await (await client.get(f"/api/v1/sequences/{sequence['id']}")).json()
    assert again["version"] == 2
    assert again["send_window"] == {"start": "09:00:00", "end": "18:00:00"}
    taken = await client.post("/console/sequences", data=multidict(sequence_form(token)))
    assert taken.status == 409
    no_steps = await client.post(
        "/console/sequences",
        data=multidict({"csrf_token": token, "name": "Empty", "step_0_kind": "text"}),
    )
    assert no_steps.status == 422
    assert 'data-field="steps"' in await no_steps.text()


async def test_enrolment_by_tag_and_csv_shows_each_step_of_each_enrolment(
    client: Client,
) -> None:
    token = await sign_in(client, MARK, "marketer")
    await import_contacts(client, token, 3, {1}, tag="spring")
    await client.post("/console/sequences", data=multidict(sequence_form(token)))
    [sequence] = (await (await client.get("/api/v1/sequences")).json())["sequences"]
    path = f"/console/sequences/{sequence['id']}"
    nobody = await client.post(f"{path}/enrol/tag", data={"csrf_token": token, "tag": "winter"})
    assert nobody.status == 422
    assert "tag: no contact has the tag &#39;winter&#39;" in await nobody.text()
    by_tag = await client.post(f"{path}/enrol/tag", data={"csrf_token": token, "tag": "spring"})
    text = await by_tag.text()
    assert "3 enrolled" in text
    assert len(re.findall(r'<tr data-wa-id="', text)) == 3
    text = await upload(
        client, f"{path}/enrol/csv", token, f"phone\n{number(0)}\n+1 650 555 9999\nnope\n"
    )
    assert "0 enrolled · 1 already in the sequence · 2 line(s) not enrolled" in text
    assert "line 3: there is no contact 16505559999; import it first" in text
    assert "line 4: phone: &#39;nope&#39; is not a valid phone number" in text


# --- reports -----------------------------------------------------------------------------


async def test_reports_count_failures_by_reason_and_stream_the_csv(
    client: Client, clock: FrozenClock
) -> None:
    await sign_in(client, MARK, "marketer")
    for index in range(4):
        await add_contact(client, number(index))
    store = store_of(client)
    failures = [
        Failure(code="marketing_opt_out", reason="The contact opted out of marketing"),
        Failure(code="marketing_opt_out", reason="The contact opted out of marketing"),
        Failure(code="131049", reason="Meta chose not to deliver it"),
        None,
    ]

    async def job(tx: Tx) -> None:
        for index, failure in enumerate(failures):
            contact = await tx.contacts.get(number(index))
            assert contact is not None
            sent = await enqueue(
                tx,
                OutboundRequest(
                    contact,
                    Channel.API,
                    TemplateContent(name="order_update", language="en_US", params=("A", "B")),
                ),
                now=clock.now(),
            )
            assert sent.message is not None
            if failure is not None:
                await tx.messages.change_status(
                    sent.message.id, MessageStatus.FAILED, at=clock.now(), failure=failure
                )

    await store.write(job)
    page = await client.get("/console/reports")
    text = await page.text()
    summary = re.findall(r'<tr data-code="([^"]+)">.*?<td>(\d+)</td></tr>', text)
    assert summary == [("marketing_opt_out", "2"), ("131049", "1")]
    assert "Meta chose not to deliver it" in text
    only = await (await client.get("/console/reports", params={"failure_code": "131049"})).text()
    assert len(re.findall(r'<tr><td class="nowrap">\+1 650', only)) == 1
    bad = await client.get("/console/reports", params={"status": "lost"})
    assert bad.status == 422
    assert re.search(r'data-field="status" role="alert">status: Input should be', await bad.text())
    report = await client.get(
        "/console/reports/messages.csv", params={"status": "failed", "channel": "api"}
    )
    rows = list(csv.DictReader(io.StringIO(await report.text())))
    assert sorted(row["failure_code"] for row in rows) == [
        "131049",
        "marketing_opt_out",
        "marketing_opt_out",
    ]
    assert all(row["failure_reason"] for row in rows)

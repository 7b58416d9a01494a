"""The agents' console over HTTP: sign-in, sessions, CSRF, the rate limit, escaping,
and what its pages and scripts' JSON show."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from markupsafe import escape

from engine.clock import FrozenClock
from engine.models import Failure, MessageStatus, Owner
from engine.store import Tx
from engine.web.console.auth import SESSION_COOKIE
from tests.conftest import SAMPLE_PHONE_NUMBER_ID
from tests.desk import PASSWORD, Client, add_agent, add_contact, messages_of, receive, store_of
from tests.inbound_support import text_notification

ANN = "ann@example.com"
BOB = "bob@example.com"
WA = "16505551234"
OTHER = "4915123456789"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


async def login_form(client: Client) -> str:
    page = await client.get("/console/login")
    assert page.status == 200
    match = _CSRF.search(await page.text())
    assert match is not None
    return match[1]


async def sign_in(client: Client, email: str, password: str = PASSWORD) -> Any:
    token = await login_form(client)
    return await client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/console"},
        allow_redirects=False,
    )


async def page_token(client: Client, path: str = "/console") -> str:
    page = await client.get(path)
    assert page.status == 200, await page.text()
    match = _META.search(await page.text())
    assert match is not None
    return match[1]


async def signed_in(client: Client, email: str = ANN, name: str = "Ann") -> str:
    await add_agent(client, email, name=name)
    response = await sign_in(client, email)
    assert response.status == 303, await response.text()
    return await page_token(client)


# --- sign-in, sessions, rate limit ------------------------------------------------------------


async def test_sign_in_sets_an_http_only_same_site_cookie(client: Client) -> None:
    await add_agent(client, ANN, name="Ann")
    response = await sign_in(client, "ANN@example.com")
    assert response.status == 303
    assert response.headers["Location"] == "/console"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/console"
    home = await client.get("/console")
    text = await home.text()
    assert home.status == 200
    assert "Ann" in text
    assert "default-src 'self'" in home.headers["Content-Security-Policy"]


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: Client) -> None:
    await add_agent(client, ANN)
    for email, password in ((ANN, "wrong password!"), ("who@example.com", PASSWORD)):
        response = await sign_in(client, email, password)
        assert response.status == 401
        assert "Wrong email or password." in await response.text()
        assert SESSION_COOKIE not in response.cookies
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_repeated_failures_pause_sign_in_until_they_age_out(
    client: Client, clock: FrozenClock
) -> None:
    await add_agent(client, ANN)
    for _ in range(5):
        assert (await sign_in(client, ANN, "wrong password!")).status == 401
        clock.advance(minutes=1)
    paused = await sign_in(client, ANN)  # the right password, but paused
    assert paused.status == 429
    assert "Too many failed sign-ins. Try again in 10 minutes." in await paused.text()
    assert SESSION_COOKIE not in paused.cookies
    clock.advance(minutes=10)
    assert (await sign_in(client, ANN)).status == 303


async def test_sign_in_without_the_form_token_is_refused(client: Client) -> None:
    await add_agent(client, ANN)
    await login_form(client)
    for token in ("", "forged"):
        response = await client.post(
            "/console/login",
            data={"email": ANN, "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
        )
        assert response.status == 403
        assert SESSION_COOKIE not in response.cookies


async def test_without_a_session_pages_go_to_sign_in_and_scripts_get_401(
    client: Client,
) -> None:
    page = await client.get(f"/console/conversations/{WA}", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == f"/console/login?next=/console/conversations/{WA}"
    script = await client.get("/console/api/conversations")
    assert script.status == 401
    assert (await script.json())["error"]["code"] == "session_expired"


async def test_an_idle_session_expires_and_an_active_one_is_extended(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client)
    clock.advance(hours=7)
    assert (await client.get("/console")).status == 200  # past half-time: extended to 7h + 12h
    clock.advance(hours=11)
    assert (await client.get("/console")).status == 200
    clock.advance(hours=12, seconds=1)
    expired = await client.get("/console", allow_redirects=False)
    assert expired.status == 303
    assert expired.headers["Location"].startswith("/console/login")


async def test_sign_out_ends_the_session_for_good(client: Client) -> None:
    token = await signed_in(client)
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/console"))[SESSION_COOKIE]
    out = await client.post("/console/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    assert out.headers["Location"] == "/console/login"
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: stolen.value})
    replay = await client.get("/console", allow_redirects=False)
    assert replay.status == 303


# --- CSRF -------------------------------------------------------------------------------------


async def test_state_changes_without_the_csrf_token_are_403_and_change_nothing(
    client: Client,
) -> None:
    await signed_in(client)
    await add_contact(client, WA, opted_in=False)
    form = await client.post(f"/console/conversations/{WA}/takeover", data={})
    assert form.status == 403
    assert "security token" in await form.text()
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        script = await client.post(
            f"/console/api/contacts/{WA}/opt-in", json={"marketing_opt_in": True}, headers=headers
        )
        assert script.status == 403
        assert (await script.json())["error"]["code"] == "csrf_failed"
    logout = await client.post("/console/logout", allow_redirects=False)
    assert logout.status == 403
    assert (await client.get("/console")).status == 200, "still signed in"
    contact = await (await client.get(f"/api/v1/contacts/{WA}")).json()
    assert contact["marketing_opt_in"] is False
    assert (await (await client.get(f"/api/v1/conversations/{WA}")).json())["owner"] == "bot"


# --- pages and actions ------------------------------------------------------------------------


async def test_unknown_conversations_are_404(client: Client) -> None:
    await signed_in(client)
    page = await client.get("/console/conversations/16505550000")
    assert page.status == 404
    assert "There is no conversation with 16505550000." in await page.text()
    script = await client.get("/console/api/conversations/16505550000")
    assert script.status == 404


async def test_takeover_and_release_buttons_and_a_conflict(
    client: Client, clock: FrozenClock
) -> None:
    token = await signed_in(client)
    await add_contact(client, WA)
    await receive(store_of(client), WA, "hello", clock.now())
    taken = await client.post(
        f"/console/conversations/{WA}/takeover", data={"csrf_token": token}, allow_redirects=False
    )
    assert taken.status == 303
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert "You own this conversation" in page
    assert 'id="composer"' in page

    await add_agent(client, BOB, name="Bob")
    client.session.cookie_jar.clear()
    assert (await sign_in(client, BOB)).status == 303
    bob_token = await page_token(client)
    refused = await client.post(
        f"/console/conversations/{WA}/takeover",
        data={"csrf_token": bob_token},
        allow_redirects=False,
    )
    # POST-redirect-GET: the address bar never holds the POST, so reloading works.
    assert refused.status == 303
    target = refused.headers["Location"]
    assert target == f"/console/conversations/{WA}?refused=conversation_owned"
    text = await (await client.get(target)).text()
    assert "Ann already has this conversation." in text
    assert "Ann owns this conversation." in text
    assert 'id="composer"' not in text
    reload = await client.get(f"/console/conversations/{WA}/takeover", allow_redirects=False)
    assert reload.status == 303, "an old history entry of the button leads to the page"
    release = await client.post(
        f"/console/conversations/{WA}/release",
        data={"csrf_token": bob_token},
        allow_redirects=False,
    )
    assert release.status == 303, "an agent releases only their own conversations"
    assert "refused=conversation_owned" in release.headers["Location"]


async def test_the_page_shows_banners_and_templates_by_category(
    client: Client, clock: FrozenClock
) -> None:
    token = await signed_in(client)
    await add_contact(client, WA, opted_in=False)
    await receive(store_of(client), WA, "hello", clock.now())
    await client.post(f"/console/conversations/{WA}/takeover", data={"csrf_token": token})
    clock.advance(hours=20, minutes=30)
    await sign_in(client, ANN)  # the session went idle meanwhile
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert 'data-notice="marketing_opt_out"' in page
    assert "This contact has opted out of marketing messages." in page
    assert "The 24-hour window is open for 3 h 30 min more" in page
    groups = re.findall(r'<optgroup label="(\w+)">', page)
    assert groups == ["Marketing", "Utility", "Authentication"]
    confirm = re.findall(r'data-name="(\w+)"[^>]*data-confirm=', page.replace("\n", " "))
    assert sorted(confirm) == ["new_arrivals", "spring_sale"]

    clock.advance(hours=4)
    closed = await (await client.get(f"/console/conversations/{WA}")).text()
    assert "The 24-hour window closed 30 min ago" in closed
    assert "The 24-hour window is closed: send a template." in closed


async def test_customer_and_agent_text_is_escaped(client: Client, clock: FrozenClock) -> None:
    evil_agent = '<b onmouseover="x()">Ann</b>'
    token = await signed_in(client, name=evil_agent)
    evil_name = "<img src=x onerror=alert(1)>"
    await add_contact(client, WA, name=evil_name)
    await receive(store_of(client), WA, "<script>alert('hi')</script>", clock.now())
    await client.post(f"/console/conversations/{WA}/takeover", data={"csrf_token": token})
    sent = await client.post(
        f"/console/api/conversations/{WA}/messages",
        json={"text": "</textarea><script>steal()</script>"},
        headers={"X-CSRF-Token": token},
    )
    assert sent.status == 202
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    for raw in (evil_agent, evil_name, "<script>alert(", "<script>steal()"):
        assert raw not in page
    assert str(escape("<script>alert('hi')</script>")) in page
    assert str(escape("</textarea><script>steal()</script>")) in page
    assert str(escape(evil_name)) in page
    assert str(escape(evil_agent)) in page
    names = re.search(r'<script type="application/json" id="agent-names">(.*?)</script>', page)
    assert names is not None
    assert "<" not in names[1], "JSON in the page cannot close its script element"


async def test_compose_from_the_console_is_the_signed_in_agent(
    client: Client, clock: FrozenClock
) -> None:
    token = await signed_in(client)
    await add_agent(client, BOB, name="Bob")
    await add_contact(client, WA, opted_in=False)
    await client.post(f"/console/conversations/{WA}/takeover", data={"csrf_token": token})
    sale = {"name": "spring_sale", "language": "en_US", "params": ["Chris", "20%"]}
    url = f"/console/api/conversations/{WA}/messages"
    headers = {"X-CSRF-Token": token}

    asked = await client.post(url, json={"template": sale}, headers=headers)
    assert asked.status == 409
    error = (await asked.json())["error"]
    assert error["code"] == "marketing_opt_out_confirmation_required"
    assert [n["code"] for n in error["notices"]] == ["marketing_opt_out"]
    assert await messages_of(store_of(client), WA) == []

    sent = await client.post(
        url,
        json={"template": sale, "confirm_opted_out": True, "agent": BOB},
        headers=headers,
    )
    assert sent.status == 202
    body = await sent.json()
    assert body["agent"] == ANN, "the console names the signed-in agent, whatever the body says"
    assert body["confirmed_opted_out"]["by"] == ANN
    missing = await client.post(
        url, json={"template": {**sale, "params": ["Chris"]}}, headers=headers
    )
    assert (await missing.json())["error"]["fields"][0]["field"] == "template.params"

    reason = "Message failed to send because more than 24 hours have passed."

    async def meta_says_window_closed(tx: Tx) -> None:
        failure = Failure(code="131047", reason=reason)
        await tx.messages.change_status(
            body["id"], MessageStatus.FAILED, at=clock.now(), failure=failure
        )

    await store_of(client).write(meta_says_window_closed)
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert f"Not delivered: {reason} (131047)" in page
    assert "Sent to a contact who opted out · confirmed by Ann" in page


async def test_the_opt_in_toggle_writes_the_ledger_as_the_agent(client: Client) -> None:
    token = await signed_in(client)
    await add_contact(client, WA, opted_in=True)
    response = await client.post(
        f"/console/api/contacts/{WA}/opt-in",
        json={"marketing_opt_in": False},
        headers={"X-CSRF-Token": token},
    )
    assert response.status == 200
    body = await response.json()
    assert body["marketing_opt_in"] is False
    last = body["consent"][-1]
    assert (last["marketing_opt_in"], last["source"], last["actor"]) == (False, "agent", ANN)
    history = await (await client.get(f"/api/v1/contacts/{WA}/consent")).json()
    assert [(e["source"], e["actor"]) for e in history] == [("api", "api"), ("agent", ANN)]
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert 'data-notice="marketing_opt_out"' in page
    bad = await client.post(
        f"/console/api/contacts/{WA}/opt-in",
        json={"marketing_opt_in": "maybe"},
        headers={"X-CSRF-Token": token},
    )
    assert (await bad.json())["error"]["fields"][0]["field"] == "marketing_opt_in"


async def test_unread_counts_follow_reading(client: Client, clock: FrozenClock) -> None:
    await signed_in(client)
    await add_contact(client, WA)

    async def hand_off(tx: Tx) -> None:
        contact = await tx.contacts.get(WA)
        assert contact is not None
        await tx.conversations.set_owner(contact.id, Owner.AGENT, None)

    await store_of(client).write(hand_off)
    await receive(store_of(client), WA, "one", clock.now())
    clock.advance(seconds=5)
    await receive(store_of(client), WA, "two", clock.now())

    async def queue() -> list[tuple[str, int]]:
        lists = await (await client.get("/console/api/conversations")).json()
        assert set(lists) == {"queue", "mine", "bot"}
        return [(row["wa_id"], row["unread"]) for row in lists["queue"]]

    assert await queue() == [(WA, 2)]
    clock.advance(seconds=5)
    seen = await client.get(f"/console/api/conversations/{WA}")
    assert [m["text"] for m in (await seen.json())["messages"]] == ["one", "two"]
    assert await queue() == [(WA, 0)]
    clock.advance(seconds=5)
    await receive(store_of(client), WA, "three", clock.now())
    assert await queue() == [(WA, 1)]


async def test_a_conversation_is_opened_by_user_id_and_shows_both_ids(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client)
    user_id = "US.13491208655302741918"
    created = await client.post(
        "/api/v1/contacts", json={"wa_id": WA, "user_id": user_id, "name": "Pablo"}
    )
    assert created.status == 201
    await receive(store_of(client), user_id, "hola", clock.now())
    page = await client.get(f"/console/conversations/{user_id}")
    assert page.status == 200
    text = await page.text()
    assert "+1 650-555-1234" in text
    assert f'id="contact-user-id" title="WhatsApp user id">{user_id}<' in text
    only_user_id = "US.77"
    await client.post("/api/v1/contacts", json={"user_id": only_user_id})
    await receive(store_of(client), only_user_id, "hi", clock.now())
    shown = await (await client.get(f"/console/conversations/{only_user_id}")).text()
    assert only_user_id in shown
    assert 'id="contact-user-id"' not in shown, "the one id is shown once, as the address"
    bad = await client.get("/console/conversations/US.12-3")
    assert bad.status == 404, "the console answers a page that names no one with its 404"
    assert "is not a user id" in await bad.text()


# --- business numbers ---------------------------------------------------------------------------

SUPPORT = "106540352242923"
"""A second business number of the install (the first is the configured one, +1 555-078-3881)."""


async def customer_writes_to(
    client: Client, phone_number_id: str, text: str, wamid: str, at: datetime
) -> None:
    """Meta's notification of a customer's text to one of the business numbers."""
    notification = text_notification(text, wamid=wamid, sender=WA, sent_at=at)
    notification["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    answer = await client.post("/webhook", json=notification)
    assert answer.status == 200, await answer.text()


def number_labels_in(page: str) -> tuple[list[str], list[str]]:
    """The business number the open conversation's header shows, and those of the rows."""
    header = re.findall(r'<p class="conv-number" id="conv-number"[^>]*>([^<]*)</p>', page)
    rows = re.findall(r'<span class="conv-number"[^>]*>([^<]*)</span>', page)
    return header, rows


async def test_with_two_numbers_the_console_shows_the_one_a_conversation_is_on(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client)
    registered = await client.post(
        "/api/v1/numbers",
        json={"phone_number_id": SUPPORT, "display_phone_number": "+1 555-078-3884"},
    )
    assert registered.status == 201, await registered.text()
    await add_contact(client, WA)
    await add_contact(client, OTHER)
    # A conversation from before numbers were kept (or never written to one) shows none.
    await receive(store_of(client), OTHER, "an old conversation", clock.now())

    await customer_writes_to(client, SUPPORT, "my parcel is late", "wamid.support-1", clock.now())
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert number_labels_in(page) == (["To +1 555-078-3884"], ["To +1 555-078-3884"])
    home = await (await client.get("/console")).text()
    assert number_labels_in(home) == ([], ["To +1 555-078-3884"])
    rows = await (await client.get("/console/api/conversations")).json()
    shown = {row["wa_id"]: (row["number"], row["phone_number_id"]) for row in rows["bot"]}
    assert shown == {WA: ("+1 555-078-3884", SUPPORT), OTHER: (None, None)}
    summary = await (await client.get(f"/console/api/conversations/{WA}/summary")).json()
    assert summary["number"] == "+1 555-078-3884"
    old = await (await client.get(f"/console/conversations/{OTHER}")).text()
    assert number_labels_in(old) == ([], ["To +1 555-078-3884"]), "only WA's row has one"

    # Writing to the first number moves the conversation there: the agents answer from it.
    clock.advance(minutes=5)
    await customer_writes_to(
        client, SAMPLE_PHONE_NUMBER_ID, "and a question for sales", "wamid.sales-1", clock.now()
    )
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert number_labels_in(page) == (["To +1 555-078-3881"], ["To +1 555-078-3881"])
    view = await (await client.get(f"/console/api/conversations/{WA}")).json()
    assert view["number"] == "+1 555-078-3881"


async def test_with_one_number_the_console_shows_no_business_number(
    client: Client, clock: FrozenClock
) -> None:
    await signed_in(client)
    await add_contact(client, WA)
    await customer_writes_to(
        client, SAMPLE_PHONE_NUMBER_ID, "hello", "wamid.only-number", clock.now()
    )
    page = await (await client.get(f"/console/conversations/{WA}")).text()
    assert "hello" in page
    assert number_labels_in(page) == ([], [])
    assert "+1 555-078-3881" not in page
    rows = await (await client.get("/console/api/conversations")).json()
    assert [(row["wa_id"], row["number"]) for row in rows["bot"]] == [(WA, None)]
    assert rows["bot"][0]["phone_number_id"] == SAMPLE_PHONE_NUMBER_ID
    view = await (await client.get(f"/console/api/conversations/{WA}")).json()
    assert view["number"] is None

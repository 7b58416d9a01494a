"""The console behind a TLS-terminating proxy: ``Secure`` cookies when the client came
over https, and failed sign-ins counted per (client address, email), the address taken
from ``X-Forwarded-For`` only when the peer is a trusted proxy. Real requests on
loopback; the test sets the X-Forwarded headers as a proxy would."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from engine.clock import FrozenClock
from engine.devtools.cluster import free_port
from engine.web.console.auth import LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import AUTH, ROOT, make_app, make_settings
from tests.desk import PASSWORD, Client, add_agent
from tests.test_webhook_server import run_with

ANN = "ann@example.com"
BOB = "bob@example.com"
OFFICE = "203.0.113.5"
HOME = "198.51.100.7"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def console(aiohttp_client: Any, tmp_path: Path, clock: FrozenClock, **env: Any) -> Client:
    settings = make_settings(tmp_path, LOGIN_MAX_FAILURES=2, **env)
    client: Client = await aiohttp_client(make_app(settings, clock=clock), headers=AUTH)
    for email in (ANN, BOB):
        await add_agent(client, email)
    return client


async def sign_in(client: Client, email: str, password: str = PASSWORD, **forwarded: str) -> Any:
    """Through the sign-in form, as a browser would (the form's cookie sent back even
    when it is ``Secure``: the test's plain-HTTP loopback stands for the proxy's hop)."""
    client.session.cookie_jar.clear()  # each sign-in a fresh browser
    form = await client.get("/console/login")
    assert form.status == 200
    token = _CSRF.search(await form.text())
    assert token is not None
    cookie = form.cookies[LOGIN_COOKIE].value
    return await client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": token[1]},
        headers={f"X-Forwarded-{name.title()}": value for name, value in forwarded.items()},
        cookies={LOGIN_COOKIE: cookie},
        allow_redirects=False,
    )


def secure(response: Any) -> bool:
    assert response.status == 303, response.status
    return bool(response.cookies[SESSION_COOKIE]["secure"])


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await console(aiohttp_client, tmp_path, clock, PUBLIC_URL="https://desk.example")
    assert secure(await sign_in(client, ANN))


async def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await console(aiohttp_client, tmp_path, clock, TRUSTED_PROXIES="10.0.0.0/8,127.0.0.1")
    assert secure(await sign_in(client, ANN, proto="https"))
    assert not secure(await sign_in(client, ANN, proto="http"))
    assert not secure(await sign_in(client, ANN))


async def test_x_forwarded_proto_from_anyone_else_is_ignored(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await console(aiohttp_client, tmp_path, clock, TRUSTED_PROXIES="10.0.0.1")
    assert not secure(await sign_in(client, ANN, proto="https"))


async def test_failures_pause_one_email_from_one_address_only(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await console(aiohttp_client, tmp_path, clock, TRUSTED_PROXIES="127.0.0.1")
    for _ in range(2):
        assert (await sign_in(client, ANN, "wrong password!", **{"for": OFFICE})).status == 401
    paused = await sign_in(client, ANN, **{"for": OFFICE})
    assert paused.status == 429, "the right password, but this address failed for Ann"
    assert SESSION_COOKIE not in paused.cookies
    # A client cannot slip out by writing another address in front of the real one:
    # the proxy appends the address it saw.
    spoofed = await sign_in(client, ANN, **{"for": f"192.0.2.1, {OFFICE}"})
    assert spoofed.status == 429
    assert (await sign_in(client, BOB, **{"for": OFFICE})).status == 303, "a colleague"
    assert (await sign_in(client, ANN, **{"for": HOME})).status == 303, "Ann elsewhere"
    clock.advance(minutes=15)
    assert (await sign_in(client, ANN, **{"for": OFFICE})).status == 303, "aged out"


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(
    aiohttp_client: Any, tmp_path: Path, clock: FrozenClock
) -> None:
    client = await console(aiohttp_client, tmp_path, clock)
    for address in (OFFICE, HOME):
        assert (await sign_in(client, ANN, "wrong password!", **{"for": address})).status == 401
    assert (await sign_in(client, ANN, **{"for": "192.0.2.1"})).status == 429, "one peer"
    assert (await sign_in(client, BOB)).status == 303, "other agents at the same address"


def test_a_malformed_trusted_proxies_stops_the_server_naming_it(tmp_path: Path) -> None:
    finished = run_with(
        tmp_path,
        [sys.executable, str(ROOT / "webhook_server.py"), "--port", str(free_port())],
        TRUSTED_PROXIES="10.0.0.0/8, proxy.example",
    )
    assert finished.returncode == 2
    assert finished.stderr.splitlines() == [
        "optinflow did not start: the settings are invalid:",
        "  TRUSTED_PROXIES: 'proxy.example' is not an IP address or a CIDR network",
    ]

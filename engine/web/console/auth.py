"""Console sign-in: sessions in the store, an HTTP-only SameSite cookie, CSRF tokens,
and a pause after repeated failed sign-ins.

- The session cookie holds a random token; the store keeps only its SHA-256, the
  agent, the session's CSRF token and when it expires. A request that finds less than
  half the idle time left moves the expiry on.
- Every state-changing console request carries the session's CSRF token (synchronizer
  token pattern): a form field ``csrf_token`` or the ``X-CSRF-Token`` header. The
  sign-in form, shown before any session exists, pairs its field with a cookie of its
  own (double submit).
- After ``LOGIN_MAX_FAILURES`` failed sign-ins for one email from one address within
  ``LOGIN_LOCKOUT_MINUTES``, sign-in for that email from that address is refused, even
  with the right password, until the failures age out. The pause is for the pair:
  agents who share the address (an office, a proxy) are not locked out by someone
  else's failures, and nobody can lock an agent out from elsewhere. The address is the
  client's as a trusted proxy reports it (``engine.web.forwarded``).
- Cookies are ``Secure`` when the client came over https: ``PUBLIC_URL`` is https, or
  a trusted proxy says so in ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from engine.agents.passwords import DECOY_HASH, verify_password
from engine.config import Settings
from engine.models.agent import Agent
from engine.store import Store, Tx
from engine.store.agents import Session
from engine.web.forwarded import is_https
from engine.web.keys import CLOCK, SETTINGS, STORE

PREFIX = "/console"
LOGIN_PATH = "/console/login"
STATIC_PREFIX = "/console/static/"
SCRIPT_PREFIX = "/console/api/"
SESSION_COOKIE = "optinflow_session"
LOGIN_COOKIE = "optinflow_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SESSION = web.RequestKey("console_session", Session)


class ConsoleRefusal(Exception):
    """Answered as a page to a browser, as JSON to the console's scripts."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.console_session_hours)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith(SCRIPT_PREFIX)


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


# --- sign-in ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    agent: Agent | None
    paused_for: timedelta | None = None
    """Set when sign-in is paused after repeated failures: how long is left."""


def failure_key(email: str, address: str | None) -> str:
    """Failed sign-ins are counted per (address, email)."""
    return f"ip-email:{address or 'unknown'} {email.strip().lower()}"


async def sign_in(
    store: Store,
    settings: Settings,
    email: str,
    password: str,
    *,
    address: str | None,
    now: datetime,
) -> SignIn:
    """Check the password unless sign-in is paused; record a failure, or clear them."""
    window = timedelta(minutes=settings.login_lockout_minutes)
    key = failure_key(email, address)
    allowed = settings.login_max_failures
    async with store.read() as tx:
        failures = await tx.agents.login_failures(key, since=now - window)
        if len(failures) >= allowed:
            # Paused until enough failures age out to leave one try.
            return SignIn(None, paused_for=failures[-allowed] + window - now)
        credentials = await tx.agents.credentials(email.strip())
    # An unknown email costs the same scrypt as a wrong password (no timing oracle);
    # scrypt takes tens of milliseconds of CPU, so off the event loop.
    stored = DECOY_HASH if credentials is None else credentials.password_hash
    matches = await asyncio.to_thread(verify_password, password, stored)
    if credentials is None or not matches:
        await store.write(lambda tx: tx.agents.record_login_failure(key, now))
        return SignIn(None)
    await store.write(lambda tx: tx.agents.clear_login_failures(key))
    return SignIn(credentials.agent)


async def start_session(request: web.Request, response: web.StreamResponse, agent: Agent) -> None:
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()
    token = secrets.token_urlsafe(32)
    expires_at = now + session_ttl(settings)

    async def job(tx: Tx) -> None:
        await tx.agents.purge_sessions(expired_before=now)
        await tx.agents.start_session(
            agent.id, token_sha256(token), secrets.token_urlsafe(32), expires_at
        )

    await request.app[STORE].write(job)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="Lax",  # sent on links into the console, never on other sites' posts
        secure=is_https(request),
        max_age=int(session_ttl(settings).total_seconds()),
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[STORE].write(lambda tx: tx.agents.end_session(token_sha256(token)))
    response.del_cookie(SESSION_COOKIE, path=PREFIX)


def login_form_token(request: web.Request, response: web.StreamResponse) -> str:
    """The sign-in form's CSRF token, paired with a cookie (double submit)."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )
    return token


# --- every console request ------------------------------------------------------------------


async def current_session(request: web.Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    settings, now = request.app[SETTINGS], request.app[CLOCK].now()
    digest = token_sha256(token)
    async with request.app[STORE].read() as tx:
        session = await tx.agents.session(digest, now=now)
    if session is None:
        return None
    ttl = session_ttl(settings)
    if session.expires_at - now < ttl / 2:
        await request.app[STORE].write(lambda tx: tx.agents.extend_session(digest, now + ttl))
    return session


async def check_csrf(request: web.Request, session: Session) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not same_token(given, session.csrf_token):
        raise ConsoleRefusal(
            403,
            "csrf_failed",
            "This request did not carry the page's security token. Reload the page and try again.",
        )


def is_public(path: str) -> bool:
    return path == LOGIN_PATH or path.startswith(STATIC_PREFIX)

"""Every request under ``/console``: a live session (else back to sign-in), and the
session's CSRF token on anything that changes state (else 403)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from engine.web.console.auth import (
    LOGIN_PATH,
    PREFIX,
    SAFE_METHODS,
    SESSION,
    ConsoleRefusal,
    check_csrf,
    current_session,
    is_public,
    wants_json,
)
from engine.web.console.marketing.access import home_of, may_open
from engine.web.console.media import MEDIA_PREFIX
from engine.web.console.render import SECURITY_HEADERS, render
from engine.web.error_answers import Handler


def refusal_response(request: web.Request, refusal: ConsoleRefusal) -> web.Response:
    if wants_json(request):
        body = {"error": {"code": refusal.code, "message": refusal.message}}
        return web.json_response(body, status=refusal.status, headers=SECURITY_HEADERS)
    return render(request, "error.html", status=refusal.status, message=refusal.message)


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        return await handler(request)
    try:
        if is_public(path):
            return await handler(request)
        session = await current_session(request)
        if session is None and path.startswith(MEDIA_PREFIX):
            # Customers' files: nothing, not even a sign-in page, says one exists.
            raise ConsoleRefusal(404, "not_found", "Not found.")
        if session is None:
            if wants_json(request):
                raise ConsoleRefusal(
                    401, "session_expired", "Your session has expired. Sign in again."
                )
            target = path if request.method in SAFE_METHODS else PREFIX
            raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(target)}")
        if request.method not in SAFE_METHODS:
            await check_csrf(request, session)
        role = session.agent.role
        if path in (PREFIX, PREFIX + "/") and home_of(role) != PREFIX:
            raise web.HTTPSeeOther(home_of(role))
        if not may_open(role, path):
            raise ConsoleRefusal(403, "forbidden", "Your role does not open this page.")
        request[SESSION] = session
        return await handler(request)
    except ConsoleRefusal as refusal:
        return refusal_response(request, refusal)

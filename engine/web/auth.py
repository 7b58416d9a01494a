"""The REST API's bearer token, checked on every ``/api/v1`` request
(:mod:`engine.web.api_token` keeps it)."""

from __future__ import annotations

from aiohttp import web

from engine.web.error_answers import ApiError, Handler
from engine.web.keys import API_TOKEN_CHECK

API_PREFIX = "/api/v1"


@web.middleware
async def api_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        check = request.app[API_TOKEN_CHECK]
        if scheme.lower() != "bearer" or not await check.accepts(token):
            raise ApiError(
                401,
                "unauthorized",
                "a valid API token is required: Authorization: Bearer <API_TOKEN>",
            )
    return await handler(request)

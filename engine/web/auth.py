"""The REST API's bearer token: checked on every ``/api/v1`` request.

When ``API_TOKEN`` is unset the server makes one on its first start, keeps only its
SHA-256 in the store, and shows it once; ``python -m engine api-token --rotate``
makes a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from engine.store import Store
from engine.web.errors import ApiError, Handler
from engine.web.keys import API_TOKEN_HASH

API_PREFIX = "/api/v1"
TOKEN_SETTING = "api_token_sha256"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def ensure_api_token(store: Store, configured: str | None) -> tuple[bytes, str | None]:
    """The hash to check requests against, and the token if this call just made it."""
    if configured:
        return token_hash(configured), None
    async with store.read() as tx:
        stored = await tx.settings.get(TOKEN_SETTING)
    if stored is not None:
        return bytes.fromhex(stored), None
    return await rotate_api_token(store)


async def rotate_api_token(store: Store) -> tuple[bytes, str]:
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    await store.write(lambda tx: tx.settings.put(TOKEN_SETTING, digest.hex()))
    return digest, token


@web.middleware
async def api_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = request.app[API_TOKEN_HASH]
        if scheme.lower() != "bearer" or not hmac.compare_digest(token_hash(token), expected):
            raise ApiError(
                401,
                "unauthorized",
                "a valid API token is required: Authorization: Bearer <API_TOKEN>",
            )
    return await handler(request)

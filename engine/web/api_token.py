"""The REST API's bearer token: checked on every ``/api/v1`` request.

When ``API_TOKEN`` is unset the server makes one on its first start, keeps only its
SHA-256 in the store, and shows it once; ``python -m engine api-token --rotate``
makes a new one, which a running server takes up: when a request's token does not
match, the stored hash is read again (at most once a second) before it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from engine.store import Store

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


class ApiTokenCheck:
    """The hash requests are checked against. A token kept in the store (not
    ``API_TOKEN``) may be rotated by another process; a request whose token does not
    match re-reads it, at most once every ``reread_seconds``, so guessing cannot make
    the server read the store on every request."""

    def __init__(
        self, store: Store, configured: str | None, *, reread_seconds: float = 1.0
    ) -> None:
        self._store = store
        self._configured = configured
        self._reread_seconds = reread_seconds
        self._digest = b""
        self._read_at = float("-inf")

    async def start(self) -> str | None:
        """Load (or make) the hash; the token when this call just made it."""
        self._digest, generated = await ensure_api_token(self._store, self._configured)
        self._read_at = time.monotonic()
        return generated

    async def accepts(self, token: str) -> bool:
        digest = token_hash(token)
        if hmac.compare_digest(digest, self._digest):
            return True
        if self._configured or time.monotonic() - self._read_at < self._reread_seconds:
            return False
        self._read_at = time.monotonic()
        async with self._store.read() as tx:
            stored = await tx.settings.get(TOKEN_SETTING)
        if stored is not None:
            self._digest = bytes.fromhex(stored)
        return hmac.compare_digest(digest, self._digest)

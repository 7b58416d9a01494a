"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw webhook body with the app secret.

>>> body = b'{"object":"whatsapp_business_account"}'
>>> header = sign(body, "s3cret")
>>> header.startswith("sha256=") and verify(body, header, "s3cret")
True
>>> verify(b"{}", header, "s3cret")
False
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of a signature header against the body."""
    if not header or not header.isascii():
        return False  # a hex digest is ASCII; anything else cannot match
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())

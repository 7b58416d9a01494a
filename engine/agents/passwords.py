"""Agent passwords, hashed with scrypt (a memory-hard KDF from the standard library).

A hash records its own parameters, so they can be raised later without locking
anyone out:

>>> stored = hash_password("correct horse battery")
>>> stored.startswith("scrypt$16384$8$1$")
True
>>> verify_password("correct horse battery", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1  # OWASP's scrypt minimum; about 16 MiB and 50 ms per hash
_KEY_BYTES = 32
_MAXMEM = 64 * 1024 * 1024

MIN_LENGTH = 10
MAX_LENGTH = 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_MAXMEM
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, _N, _R, _P, _KEY_BYTES)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; compares in constant time."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        expected = base64.b64decode(key, validate=True)
        if scheme != "scrypt":
            return False
        actual = _scrypt(
            password, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Checked when the email is unknown, so a wrong email costs as long as a wrong password.
DECOY_HASH = hash_password(secrets.token_urlsafe(16))

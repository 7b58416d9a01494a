"""Suppression of erased people: what is kept of a person after they are erased is a keyed
hash of their number and of their user id, so the same person coming back (a CSV import,
the API, a message) starts opted out, while nothing kept names them.

The key is an HMAC-SHA256 with a secret made once per install and kept in the database:
without the secret the hashes cannot be matched against a list of numbers.

>>> keys = suppression_keys("s3cret", wa_id="16505551234", user_id=None)
>>> len(keys), len(keys[0])
(1, 64)
>>> keys == suppression_keys("s3cret", wa_id="16505551234", user_id=None)
True
>>> keys == suppression_keys("other", wa_id="16505551234", user_id=None)
False
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_KEY = "suppression_secret"
"""Where the install's secret is kept (the store's settings)."""


def new_secret() -> str:
    return secrets.token_hex(32)


def suppression_keys(secret: str, *, wa_id: str | None, user_id: str | None) -> list[str]:
    """The keys of a number and a user id (each that is given)."""
    keys = []
    for kind, value in (("wa_id", wa_id), ("user_id", user_id)):
        if value:
            message = f"{kind}:{value}".encode()
            keys.append(hmac.new(secret.encode(), message, hashlib.sha256).hexdigest())
    return keys

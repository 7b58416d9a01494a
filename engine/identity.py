"""How Meta names a customer: a phone number (``wa_id``) or a business-scoped user id.

A user id is a two-letter country code, a dot and letters or digits
(``US.13491208655302741918``); the id shared by the portfolios of one enterprise has
``ENT.`` after the country (``US.ENT.11815799212886844830``). Meta gives one to every
customer, and for someone who hides their number behind a username it is the only
name we get.

>>> is_user_id("US.13491208655302741918"), is_user_id("US.ENT.118157992128"), is_user_id("US.")
(True, True, False)
>>> is_user_id("16505551234"), is_user_id("us.123"), is_user_id("US.12 3")
(False, False, False)
"""

from __future__ import annotations

import re

_USER_ID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")

USER_ID_SHAPE = "a country code, a dot and letters or digits, e.g. US.13491208655302741918"


def is_user_id(value: str) -> bool:
    """Whether ``value`` has the shape of a business-scoped user id."""
    return _USER_ID.fullmatch(value) is not None


def looks_like_user_id(value: str) -> bool:
    """Whether ``value`` was meant as a user id rather than a phone number (it has a
    dot, as no way of writing a phone number does), well formed or not."""
    return "." in value

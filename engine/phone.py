"""Phone numbers in, WhatsApp ids (E.164 digits without ``+``) out."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


def to_wa_id(raw: str, default_region: str) -> str:
    """Normalise a phone number written in any common form to Meta's ``wa_id``.

    Digits alone are first read as an international number (the form Meta uses),
    then as a national number of ``default_region``.

    >>> to_wa_id("+1 (650) 555-1234", "GB")
    '16505551234'
    >>> to_wa_id("16505551234", "GB")
    '16505551234'
    >>> to_wa_id("07911 123456", "GB")
    '447911123456'
    """
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("the phone number is empty")
    candidates: list[tuple[str, str | None]] = []
    digits = text.lstrip("+")
    if digits.isdigit():
        candidates.append(("+" + digits, None))
    if not text.startswith("+"):
        candidates.append((text, default_region))
    else:
        candidates.append((text, None))
    for number, region in candidates:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.E164
            ).removeprefix("+")
    raise InvalidPhoneNumber(f"{raw!r} is not a valid phone number")


def is_valid_wa_id(value: str) -> bool:
    """Whether ``value`` is a ``wa_id`` (E.164 digits without ``+``) of a number the
    library knows: what a new contact's number must be.

    >>> is_valid_wa_id("16505551234"), is_valid_wa_id("972912345678"), is_valid_wa_id("x")
    (True, False, False)
    """
    if not (value.isascii() and value.isdigit()):
        return False
    try:
        return to_wa_id("+" + value, "ZZ") == value
    except InvalidPhoneNumber:
        return False

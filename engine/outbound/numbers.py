"""The business numbers of the install: registering one, and checking a chosen one.

The first registered number is the default, the one a message that names none goes out
from; ``WA_PHONE_NUMBER_ID`` is registered at start (:func:`register_configured`), so an
install with one number needs nothing more. A number is registered once: a second time is
refused (:class:`NumberExists`), so a mistyped id cannot quietly change another's
settings. Campaigns and API messages that name a number name a registered one
(:func:`require_number`, :class:`UnknownNumber` naming the field otherwise).
"""

from __future__ import annotations

from datetime import datetime

from engine.models.number import BusinessNumber
from engine.store import Tx
from engine.store.numbers import NewNumber


class NumberRefusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NumberExists(NumberRefusal):
    def __init__(self, phone_number_id: str) -> None:
        super().__init__(f"business number {phone_number_id} is registered already")
        self.phone_number_id = phone_number_id


class UnknownNumber(NumberRefusal):
    """A request names a business number this install does not have."""

    def __init__(self, phone_number_id: str, field: str = "phone_number_id") -> None:
        self.field = field
        self.field_message = f"business number {phone_number_id!r} is not registered"
        super().__init__(f"{field}: {self.field_message}")
        self.phone_number_id = phone_number_id


class NumberNotFound(NumberRefusal):
    def __init__(self, phone_number_id: str) -> None:
        super().__init__(f"business number {phone_number_id} is not registered")
        self.phone_number_id = phone_number_id


async def register_number(tx: Tx, number: NewNumber, *, now: datetime) -> BusinessNumber:
    registered = await tx.numbers.register(number, at=now)
    if registered is None:
        raise NumberExists(number.phone_number_id)
    return registered


async def register_configured(
    tx: Tx, phone_number_id: str, display_phone_number: str, *, now: datetime
) -> None:
    """``WA_PHONE_NUMBER_ID`` as a registered number (once; a restart changes nothing)."""
    await tx.numbers.register(NewNumber(phone_number_id, display_phone_number), at=now)


async def get_number(tx: Tx, phone_number_id: str) -> BusinessNumber:
    number = await tx.numbers.get(phone_number_id)
    if number is None:
        raise NumberNotFound(phone_number_id)
    return number


async def require_number(
    tx: Tx, phone_number_id: str | None, field: str = "phone_number_id"
) -> str | None:
    """``phone_number_id`` when it is registered (None: the default, unchecked)."""
    if phone_number_id is not None and await tx.numbers.get(phone_number_id) is None:
        raise UnknownNumber(phone_number_id, field)
    return phone_number_id

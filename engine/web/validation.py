"""Reading request bodies and parameters into pydantic models, with errors that name fields."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)

from engine.contacts.csv_import import MAX_TAG_LENGTH
from engine.contacts.directory import contact_address
from engine.contacts.refusals import InvalidAddress
from engine.identity import USER_ID_SHAPE, is_user_id
from engine.phone import InvalidPhoneNumber, to_wa_id
from engine.web.error_answers import ApiError, field_errors
from engine.web.json_body import INT_MAX, INT_MIN, out_of_range, parse_json
from engine.web.keys import SETTINGS

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _normalise_phone(value: str, info: ValidationInfo) -> str:
    region = (info.context or {}).get("default_region", "US")
    try:
        return to_wa_id(value, region)
    except InvalidPhoneNumber as error:
        raise ValueError(str(error)) from None


PhoneNumber = Annotated[str, AfterValidator(_normalise_phone)]
"""A phone number in any common form, validated and stored as Meta's ``wa_id``: the
number of a new contact."""


def _contact_address(value: str, info: ValidationInfo) -> str:
    region = (info.context or {}).get("default_region", "US")
    try:
        return contact_address(value, region)
    except InvalidAddress as error:
        raise ValueError(error.field_message) from None


def _user_id(value: str) -> str:
    if not is_user_id(value):
        raise ValueError(f"{value!r} is not a user id ({USER_ID_SHAPE})")
    return value


UserId = Annotated[str, AfterValidator(_user_id)]
"""Meta's business-scoped user id, exactly as Meta gives it."""

ContactAddress = Annotated[str, AfterValidator(_contact_address)]
"""A contact as a caller names it (:func:`engine.contacts.directory.contact_address`):
its ``wa_id`` or user id exactly as Meta gave it, or a phone number in any form."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


Email = Annotated[str, AfterValidator(_email)]
"""An email address, compared and stored lower-case."""


def validation_context(request: web.Request) -> dict[str, Any]:
    return {"default_region": request.app[SETTINGS].default_region}


async def read_body(request: web.Request) -> bytes:
    """The raw body; 413 ``body_too_large`` past the server's request size."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise ApiError(413, "body_too_large", error.text or "the body is too large") from None


async def read_json(request: web.Request) -> Any:
    """The body's JSON document (:func:`engine.web.json_body.parse_json` says what is
    refused)."""
    return parse_json(await read_body(request))


async def parse_body(request: web.Request, model: type[M]) -> M:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    return model.model_validate(data, context=validation_context(request))


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        query = model.model_validate(dict(request.query), context=validation_context(request))
    except ValidationError as error:
        raise field_errors(error) from None
    # Every integer parameter goes to the store, which keeps signed 64 bits.
    for name, value in query:
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise out_of_range(name, str(value))
    return query


Tag = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_TAG_LENGTH,
        # No control characters: a tag is shown and typed, and PostgreSQL's text cannot
        # hold a NUL at all.
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
"""A contact's tag as a request names it."""

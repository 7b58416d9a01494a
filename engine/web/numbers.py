"""REST: the business numbers of the install, with their quality and limits."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.models.number import BusinessNumber
from engine.outbound import numbers
from engine.store.numbers import NewNumber
from engine.web.keys import CLOCK, SETTINGS, STORE
from engine.web.validation import Body, parse_body

routes = web.RouteTableDef()

NumberId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,32}$")]
DisplayNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()-]{4,23}$")
]


class NumberCreate(Body):
    phone_number_id: NumberId = Field(description="Meta's id of the phone number")
    display_phone_number: DisplayNumber = Field(examples=["+1 555-078-3882"])
    rate_limit: int | None = Field(
        default=None, ge=1, le=1000, description="messages a second; default OUTBOUND_RATE_LIMIT"
    )


def number_json(number: BusinessNumber, default_rate: int) -> dict[str, Any]:
    document = number.model_dump(mode="json")
    document["effective_rate_limit"] = number.rate_limit or default_rate
    return document


@routes.post("/api/v1/numbers")
async def register_number(request: web.Request) -> web.Response:
    body = await parse_body(request, NumberCreate)
    new = NewNumber(body.phone_number_id, body.display_phone_number, body.rate_limit)
    now = request.app[CLOCK].now()
    number = await request.app[STORE].write(lambda tx: numbers.register_number(tx, new, now=now))
    settings = request.app[SETTINGS]
    return web.json_response(
        number_json(number, settings.rate_limit_for(number.phone_number_id)), status=201
    )


@routes.get("/api/v1/numbers")
async def list_numbers(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        found = await tx.numbers.list()
    settings = request.app[SETTINGS]
    return web.json_response(
        {"numbers": [number_json(n, settings.rate_limit_for(n.phone_number_id)) for n in found]}
    )


@routes.get("/api/v1/numbers/{phone_number_id}")
async def get_number(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        number = await numbers.get_number(tx, request.match_info["phone_number_id"])
    settings = request.app[SETTINGS]
    return web.json_response(number_json(number, settings.rate_limit_for(number.phone_number_id)))

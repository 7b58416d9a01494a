"""What the marketers' pages share: rendering with the navigation, reading forms into
the REST API's request bodies (so bad input gets the API's answers, each naming its
field), and times in the business's zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ValidationError

from engine.models.agent import Agent
from engine.web.console.auth import SESSION
from engine.web.console.marketing.access import sections_for
from engine.web.console.render import render
from engine.web.error_answers import ApiError, field_errors
from engine.web.keys import SETTINGS
from engine.web.refusals import Refusal, api_error
from engine.web.validation import validation_context

M = TypeVar("M", bound=BaseModel)
Form = MultiDictProxy[Any]


@dataclass(slots=True)
class FormErrors:
    """An API error answer laid out for a form: each message shown beside the form
    field it names (``contacts.3`` is the ``contacts`` field's, ``steps.1.text`` the
    second step's), the rest at the top."""

    status: int = 200
    summary: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, error: ApiError) -> FormErrors:
        errors = cls(error.status, error.message)
        for item in error.extra.get("fields", []):
            errors.fields.append((str(item["field"]), str(item["message"])))
        for item in error.extra.get("errors", []):  # a CSV file: by line
            errors.fields.append(("file", f"line {item['line']}: {item['message']}"))
        return errors

    def __bool__(self) -> bool:
        return self.summary is not None

    def get(self, name: str) -> list[str]:
        """The messages of field ``name`` and of the fields inside it, each naming its
        field as the API does."""
        return [
            message if where == "file" else f"{where}: {message}"
            for where, message in self.fields
            if where == name or where.startswith(name + ".")
        ]

    def only(self, name: str) -> list[str]:
        """The messages of field ``name`` itself, not of the fields inside it."""
        return [f"{where}: {message}" for where, message in self.fields if where == name]

    def api_fields(self) -> list[dict[str, str]]:
        return [{"field": where, "message": message} for where, message in self.fields]


def me(request: web.Request) -> Agent:
    return request[SESSION].agent


def marketing_page(
    request: web.Request, name: str, *, section: str, status: int = 200, **context: Any
) -> web.Response:
    agent = me(request)
    return render(
        request,
        name,
        status=status,
        me=agent,
        csrf_token=request[SESSION].csrf_token,
        nav=sections_for(agent.role),
        section=section,
        zone=business_zone(request).key,
        **context,
    )


def validate(request: web.Request, model: type[M], data: dict[str, Any]) -> M:
    """``data`` read as the REST API reads the same JSON body; a 422 ApiError naming
    every wrong field otherwise."""
    try:
        return model.model_validate(data, context=validation_context(request))
    except ValidationError as error:
        raise field_errors(error) from None


def refused(refusal: Refusal) -> FormErrors:
    return FormErrors.of(api_error(refusal))


def text(form: Form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def lines_of(value: str, *, separators: str = ",\n") -> list[str]:
    """The items of a comma- or line-separated field, blanks dropped.

    >>> lines_of("vip, spring\\n\\nnews ")
    ['vip', 'spring', 'news']
    """
    for separator in separators[1:]:
        value = value.replace(separator, separators[0])
    return [item.strip() for item in value.split(separators[0]) if item.strip()]


def business_zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].business_timezone)


def local_input(request: web.Request, value: str) -> str | None:
    """A ``datetime-local`` field's value (the business's wall clock) as the API's UTC
    ISO time; None when empty, the text unchanged when it does not parse (the API's
    validation names it)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=business_zone(request))
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def in_zone(request: web.Request, moment: datetime | None) -> str:
    """A time as the business reads it: ``2026-03-02 10:00``."""
    if moment is None:
        return ""
    return moment.astimezone(business_zone(request)).strftime("%Y-%m-%d %H:%M")

"""Pieces of the REST API's wire format that its route modules and the console share:
a template as a request names it, times in and out, and report rows as CSV cells."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from engine.web.validation import Body

Param = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class TemplateChoice(Body):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=16, examples=["en_US"])
    params: list[Param] = Field(default_factory=list, description="body parameters {{1}}..")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def csv_cells(document: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """A report row as CSV cells: ``failure`` becomes ``failure_code`` and
    ``failure_reason``, and nothing is an empty cell."""
    flat = dict(document)
    failure = flat.pop("failure", None) or {}
    flat["failure_code"] = failure.get("code")
    flat["failure_reason"] = failure.get("reason")
    return ["" if flat[column] is None else flat[column] for column in columns]

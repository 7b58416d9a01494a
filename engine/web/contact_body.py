"""Contacts as the REST API and the console both take them: a new contact and a change
to one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from engine.contacts.csv_import import MAX_TAG_LENGTH
from engine.web.validation import Body, PhoneNumber

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_LENGTH)
]


Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]


class ContactCreate(Body):
    wa_id: PhoneNumber
    name: Name | None = None
    marketing_opt_in: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)


class ContactPatch(Body):
    name: Name | None = None
    marketing_opt_in: bool | None = None
    attributes: dict[str, Any] | None = Field(
        default=None, description="merged into the contact's; a null value removes the key"
    )
    tags: list[Tag] | None = Field(default=None, description="replaces the contact's tags")
    note: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None, description="kept in the consent ledger with an opt-in change"
    )

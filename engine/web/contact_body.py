"""Contacts as the REST API and the console both take them: a new contact and a change
to one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from engine.web.validation import Body, PhoneNumber, Tag, UserId

Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]


class ContactCreate(Body):
    wa_id: PhoneNumber | None = None
    user_id: UserId | None = Field(
        default=None, description="Meta's business-scoped user id, e.g. US.13491208655302741918"
    )
    name: Name | None = None
    marketing_opt_in: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_someone(self) -> ContactCreate:
        if self.wa_id is None and self.user_id is None:
            raise ValueError("a contact needs a wa_id or a user_id")
        return self


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

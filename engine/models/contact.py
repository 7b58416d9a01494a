"""Contacts and the append-only consent ledger of their marketing opt-in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ConsentSource(StrEnum):
    """Where a change of marketing opt-in came from."""

    INBOUND = "inbound"  # contact created by their first message
    API = "api"
    IMPORT = "import"
    AGENT = "agent"
    BOT = "bot"
    KEYWORD = "keyword"  # STOP / START and their equivalents
    BUTTON = "button"  # template quick-reply with the stop/resume payload
    WHATSAPP_PREFERENCES = "whatsapp_preferences"  # Meta's user_preferences notification
    WHATSAPP_ERROR = "whatsapp_error"  # a 131050 failure status
    CONTACT_LINK = "contact_link"  # two contacts found to be one person were merged
    NUMBER_CHANGE = "number_change"  # WhatsApp said the customer changed their number
    INTENT = "intent"  # the customer confirmed an opt-out read in their own words


def opt_in_of_new_contact(stated: bool | None, *, default: bool) -> bool:
    """The marketing opt-in a new contact starts with: what was stated for them (an API
    body, a CSV cell), else the configured ``DEFAULT_MARKETING_OPT_IN`` (``default``).
    Every path that creates a contact asks this, so they all start alike."""
    return default if stated is None else stated


class Contact(BaseModel):
    """A customer. Meta identifies them by phone (``wa_id``), by a business-scoped
    user id (``user_id``, for people who hide their number behind a username), or both.
    """

    model_config = ConfigDict(frozen=True)

    id: int
    wa_id: str | None = Field(default=None, description="E.164 digits without '+'")
    user_id: str | None = Field(
        default=None, description="Meta's business-scoped user id, e.g. US.13491208655302741918"
    )
    name: str | None = None
    marketing_opt_in: bool
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime

    @property
    def address(self) -> str:
        """What Meta accepts as the recipient: the phone number, else the user id."""
        address = self.wa_id or self.user_id
        assert address is not None, "a contact has a wa_id or a user_id"
        return address


class ConsentEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    marketing_opt_in: bool
    source: ConsentSource
    actor: str | None = None
    at: datetime
    note: str | None = None

"""The local catalogue of approved WhatsApp message templates."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


class TemplateCategory(StrEnum):
    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"


APPROVED = "APPROVED"
"""The one template status Meta sends messages of; any other (PENDING, REJECTED, PAUSED,
DISABLED, IN_APPEAL, ARCHIVED, ...) holds them back."""

QUALITY_SCORES = ("GREEN", "YELLOW", "RED", "UNKNOWN")


class ButtonType(StrEnum):
    QUICK_REPLY = "QUICK_REPLY"
    URL = "URL"
    PHONE_NUMBER = "PHONE_NUMBER"


class TemplateButton(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ButtonType
    text: str = Field(min_length=1, max_length=25)
    payload: str | None = Field(default=None, description="quick-reply payload")
    url: str | None = None
    phone_number: str | None = None


def placeholder_count(text: str) -> int:
    """Number of positional parameters ``{{1}}..{{n}}`` a text needs.

    >>> placeholder_count("Hi {{1}}, your order {{2}} ships today")
    2
    """
    return max((int(n) for n in _PLACEHOLDER.findall(text)), default=0)


class Template(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", examples=["en_US"])
    category: TemplateCategory
    body: str = Field(min_length=1, max_length=1024)
    header: str | None = Field(default=None, max_length=60)
    footer: str | None = Field(default=None, max_length=60)
    buttons: tuple[TemplateButton, ...] = Field(default=(), max_length=10)
    # What Meta says of the template (synced from WhatsApp Manager, kept current by the
    # template webhooks); a template defined only here is taken as approved.
    id: str | None = Field(default=None, description="Meta's template id")
    status: str = Field(
        default=APPROVED,
        pattern=r"^[A-Z_]{1,40}$",
        description="Meta's status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...",
    )
    quality_score: str | None = Field(
        default=None, pattern=r"^[A-Z_]{1,20}$", description="GREEN, YELLOW, RED or UNKNOWN"
    )
    components: tuple[dict[str, Any], ...] | None = Field(
        default=None,
        description="the components as Meta lists them (header, body, footer, buttons)",
    )
    message_send_ttl_seconds: int | None = Field(
        default=None, ge=-1, description="how long Meta keeps trying to deliver a message of it"
    )

    @model_validator(mode="after")
    def _placeholders_are_contiguous(self) -> Template:
        used = sorted({int(n) for n in _PLACEHOLDER.findall(self.body)})
        if used != list(range(1, len(used) + 1)):
            raise ValueError("body placeholders must be numbered {{1}}, {{2}}, ... without gaps")
        return self

    @property
    def approved(self) -> bool:
        return self.status == APPROVED

    @property
    def param_count(self) -> int:
        return placeholder_count(self.body)

    def render(self, params: list[str] | tuple[str, ...]) -> str:
        """The body with its placeholders filled, as the customer reads it."""
        return _PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1], self.body)

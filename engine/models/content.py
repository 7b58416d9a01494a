"""What an outbound message carries, before it becomes Meta's send body.

The sender turns these into the Cloud API's JSON (``engine/whatsapp``); everything
upstream (flows, compose box, broadcasts, the API) speaks in these models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Content(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextContent(_Content):
    kind: Literal["text"] = "text"
    body: str = Field(min_length=1, max_length=4096)
    preview_url: bool = False


class TemplateContent(_Content):
    kind: Literal["template"] = "template"
    name: str
    language: str
    params: tuple[str, ...] = Field(default=(), description="body parameters {{1}}..{{n}}")


class ReplyButton(_Content):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ButtonsContent(_Content):
    """Interactive reply buttons (Meta allows up to three)."""

    kind: Literal["buttons"] = "buttons"
    body: str = Field(min_length=1, max_length=1024)
    buttons: tuple[ReplyButton, ...] = Field(min_length=1, max_length=3)
    header: str | None = Field(default=None, max_length=60)
    footer: str | None = Field(default=None, max_length=60)


class ListRow(_Content):
    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=24)
    description: str | None = Field(default=None, max_length=72)


class ListSection(_Content):
    title: str | None = Field(default=None, max_length=24)
    rows: tuple[ListRow, ...] = Field(min_length=1, max_length=10)


class ListContent(_Content):
    """An interactive list: a button that opens sections of rows (up to ten rows)."""

    kind: Literal["list"] = "list"
    body: str = Field(min_length=1, max_length=4096)
    button: str = Field(min_length=1, max_length=20)
    sections: tuple[ListSection, ...] = Field(min_length=1, max_length=10)
    header: str | None = Field(default=None, max_length=60)
    footer: str | None = Field(default=None, max_length=60)

    @model_validator(mode="after")
    def _at_most_ten_rows(self) -> ListContent:
        if sum(len(section.rows) for section in self.sections) > 10:
            raise ValueError("a list has at most 10 rows in all")
        return self


class MediaType(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"


class MediaContent(_Content):
    kind: Literal["media"] = "media"
    media_type: MediaType
    link: str | None = None
    media_id: str | None = None
    caption: str | None = Field(default=None, max_length=1024)
    filename: str | None = None

    @model_validator(mode="after")
    def _link_or_id(self) -> MediaContent:
        if (self.link is None) == (self.media_id is None):
            raise ValueError("media needs exactly one of link and media_id")
        return self


OutboundContent = Annotated[
    TextContent | TemplateContent | ButtonsContent | ListContent | MediaContent,
    Field(discriminator="kind"),
]

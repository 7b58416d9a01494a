"""The message fields that ``send`` and ``ask`` share, and their rendering to content.

A message is one of: ``text`` (optionally with up to three reply ``buttons`` or a
``list``), ``media`` or ``template``. Texts are jinja2; template ``params`` are
jinja2 expressions; button and row ids are fixed so branches can test them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import Field, ValidationError, model_validator

from engine.flows.model import FlowModel, Source
from engine.models.content import (
    ButtonsContent,
    ListContent,
    ListSection,
    MediaContent,
    MediaType,
    OutboundContent,
    ReplyButton,
    TemplateContent,
    TextContent,
)

if TYPE_CHECKING:
    from engine.flows.run import Run


class ListSpec(FlowModel):
    button: str = Field(min_length=1, max_length=20, description="label of the button opening it")
    sections: tuple[ListSection, ...] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _at_most_ten_rows(self) -> ListSpec:
        rows = sum(len(section.rows) for section in self.sections)
        if rows > 10:
            raise ValueError(f"a list has at most 10 rows in all, this one has {rows}")
        return self


class MediaSpec(FlowModel):
    type: MediaType
    url: str | None = Field(default=None, description="a public https URL (jinja2)")
    id: str | None = Field(default=None, description="a media id uploaded to WhatsApp")
    caption: str | None = Field(default=None, description="jinja2")
    filename: str | None = None

    @model_validator(mode="after")
    def _url_or_id(self) -> MediaSpec:
        if (self.url is None) == (self.id is None):
            raise ValueError("media needs exactly one of url and id")
        return self


class TemplateSpec(FlowModel):
    name: str = Field(description="a template of the catalogue")
    language: str = "en_US"
    params: tuple[str, ...] = Field(
        default=(), description="jinja2 expressions for {{1}}, {{2}}, ... e.g. contact.name"
    )


class MessageFields(FlowModel):
    text: str | None = Field(default=None, description="jinja2; the body of buttons or a list")
    buttons: tuple[ReplyButton, ...] | None = Field(
        default=None, min_length=1, max_length=3, description="up to 3 reply buttons"
    )
    list_: ListSpec | None = Field(default=None, alias="list")
    header: str | None = Field(default=None, description="with buttons or a list (jinja2)")
    footer: str | None = Field(default=None, description="with buttons or a list (jinja2)")
    media: MediaSpec | None = None
    template: TemplateSpec | None = None

    @model_validator(mode="after")
    def _one_message(self) -> MessageFields:
        given = [name for name in ("text", "media", "template") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a message needs exactly one of text, media or template"
                + (f" (this one has {' and '.join(given)})" if given else "")
            )
        if (self.buttons is not None or self.list_ is not None) and self.text is None:
            raise ValueError("buttons and list go with a text")
        if self.buttons is not None and self.list_ is not None:
            raise ValueError("a message has buttons or a list, not both")
        if (self.header or self.footer) and self.buttons is None and self.list_ is None:
            raise ValueError("header and footer go with buttons or a list")
        return self

    def choices(self) -> list[tuple[str, str]]:
        """(id, title) of every button or list row."""
        if self.buttons is not None:
            return [(button.id, button.title) for button in self.buttons]
        if self.list_ is not None:
            return [(row.id, row.title) for s in self.list_.sections for row in s.rows]
        return []

    def message_sources(self) -> Iterator[Source]:
        for name in ("text", "header", "footer"):
            text = getattr(self, name)
            if text is not None:
                yield Source((name,), text)
        if self.media is not None:
            for name in ("url", "caption"):
                text = getattr(self.media, name)
                if text is not None:
                    yield Source(("media", name), text)
        if self.template is not None:
            for index, param in enumerate(self.template.params):
                yield Source(("template", "params", index), param, expression=True)

    def build(self, run: Run, text: str | None = None) -> OutboundContent | str:
        """The content to send, or an error sentence. ``text`` replaces the body."""
        try:
            return self._build(run, self.text if text is None else text)
        except ValidationError as error:
            issue = error.errors(include_url=False)[0]
            field = ".".join(str(part) for part in issue["loc"])
            return f"the message cannot be sent: {field}: {issue['msg']}"

    def _build(self, run: Run, text: str | None) -> OutboundContent:
        header = None if self.header is None else run.render(self.header)
        footer = None if self.footer is None else run.render(self.footer)
        if self.template is not None:
            spec = self.template
            params = tuple(str(run.evaluate(param)) for param in spec.params)
            return TemplateContent(name=spec.name, language=spec.language, params=params)
        if self.media is not None:
            media = self.media
            return MediaContent(
                media_type=media.type,
                link=None if media.url is None else run.render(media.url),
                media_id=media.id,
                caption=None if media.caption is None else run.render(media.caption),
                filename=media.filename,
            )
        assert text is not None
        body = run.render(text)
        if self.buttons is not None:
            return ButtonsContent(body=body, buttons=self.buttons, header=header, footer=footer)
        if self.list_ is not None:
            return ListContent(
                body=body,
                button=self.list_.button,
                sections=self.list_.sections,
                header=header,
                footer=footer,
            )
        return TextContent(body=body)

"""The compose request and its answer, as the REST API and the console's script send
and read them (the console names the signed-in agent)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError, model_validator

from engine.agents.compose import Composed
from engine.agents.view import MessageView, message_json, notice_json
from engine.models.content import TemplateContent, TextContent
from engine.web.error_answers import ApiError
from engine.web.validation import Body, Email

Param = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
"""One key per intent to send (a UUID suits): printable ASCII, no spaces."""
IDEMPOTENCY_HEADER = "Idempotency-Key"


class TemplateChoice(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)]
    params: list[Param] = Field(default_factory=list)


class ComposeBody(Body):
    agent: Email
    text: Annotated[str, StringConstraints(max_length=4096)] | None = None
    template: TemplateChoice | None = None
    confirm_opted_out: bool = False
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _text_or_template(self) -> ComposeBody:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text and template")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self

    def content(self) -> TextContent | TemplateContent:
        if self.template is not None:
            return TemplateContent(
                name=self.template.name,
                language=self.template.language,
                params=tuple(self.template.params),
            )
        assert self.text is not None
        return TextContent(body=self.text)


def idempotency_key(request: web.Request, body: ComposeBody) -> str | None:
    """The key of the request: the ``Idempotency-Key`` header, else the body's."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is None:
        return body.idempotency_key
    try:
        return TypeAdapter(IdempotencyKey).validate_python(header)
    except ValidationError:
        raise ApiError(
            422,
            "invalid_request",
            f"{IDEMPOTENCY_HEADER}: 1 to 128 printable characters without spaces",
            fields=[
                {
                    "field": IDEMPOTENCY_HEADER,
                    "message": "1 to 128 printable characters without spaces",
                }
            ],
        ) from None


def composed_json(composed: Composed) -> dict[str, Any]:
    data = message_json(MessageView(composed.message, composed.record))
    data["notices"] = [notice_json(n) for n in composed.notices]
    return data

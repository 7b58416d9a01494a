"""Sequences as the REST API and the console both take them: the steps (a delay, then a
template or a text), the send window, and a tag to enrol."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from engine.flows.model import parse_duration
from engine.models.campaign import SendWindow, SequenceDefinition, SequenceStep
from engine.models.message import TemplateRef
from engine.web.validation import Body, Tag
from engine.web.wire import TemplateChoice


class StepBody(Body):
    delay_seconds: float | None = Field(default=None, ge=0)
    delay: str | None = Field(default=None, description='e.g. "30s", "5m", "2h", "1d"')
    template: TemplateChoice | None = None
    text: str | None = Field(default=None, min_length=1, max_length=4096)

    @field_validator("delay")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            seconds = parse_duration(value)
            if seconds < 0:
                raise ValueError(f"{value!r} is negative")
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> StepBody:
        if (self.delay_seconds is None) == (self.delay is None):
            raise ValueError("give exactly one of delay_seconds and delay")
        if (self.template is None) == (self.text is None):
            raise ValueError("give exactly one of template and text")
        return self

    def step(self) -> SequenceStep:
        seconds = self.delay_seconds if self.delay is None else parse_duration(self.delay)
        template = self.template
        return SequenceStep(
            delay_seconds=seconds,
            template=None
            if template is None
            else TemplateRef(
                name=template.name, language=template.language, params=tuple(template.params)
            ),
            text=self.text,
        )


class SequenceBody(Body):
    name: str = Field(min_length=1, max_length=200)
    steps: list[StepBody] = Field(min_length=1, max_length=100)
    send_window: SendWindow | None = Field(
        default=None, description='local hours, e.g. {"start": "09:00", "end": "18:00"}'
    )

    phone_number_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the business number to send from; default: the first registered",
    )

    def definition(self) -> SequenceDefinition:
        return SequenceDefinition(
            steps=tuple(step.step() for step in self.steps),
            send_window=self.send_window,
            phone_number_id=self.phone_number_id,
        )


class TagBody(Body):
    tag: Tag

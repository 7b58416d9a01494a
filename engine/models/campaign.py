"""Campaigns: broadcasts (one template to an audience) and sequences (drip campaigns).

Both only plan message rows for the outbox; the sender sends them like any other.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.models.message import Failure, TemplateRef
from engine.models.template import TemplateCategory

JsonScalar = str | int | float | bool


class BroadcastState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for send_at
    SENDING = "sending"  # being planned, or its messages are being sent
    PAUSED = "paused"  # by the quality guard or a person; a person resumes it
    COMPLETED = "completed"  # every message was sent, delivered, failed or skipped
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (BroadcastState.COMPLETED, BroadcastState.CANCELLED)


class GuardState(StrEnum):
    WATCHING = "watching"
    TRIPPED = "tripped"  # it paused the broadcast
    OVERRIDDEN = "overridden"  # a person resumed the broadcast after it tripped


class AttributeCondition(BaseModel):
    """One attribute filter of an audience: exactly one of ``equals``, ``in``, ``exists``.

    >>> AttributeCondition.model_validate({"attribute": "plan", "in": ["gold", "silver"]}).op
    'in'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    attribute: str = Field(min_length=1, max_length=64, pattern=r'^[^"\\]+$')
    equals: JsonScalar | None = None
    in_: tuple[JsonScalar, ...] | None = Field(default=None, alias="in", min_length=1)
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> AttributeCondition:
        given = [name for name in ("equals", "in_", "exists") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, in and exists")
        return self

    @property
    def op(self) -> Literal["equals", "in", "exists"]:
        if self.equals is not None:
            return "equals"
        return "in" if self.in_ is not None else "exists"

    @property
    def value(self) -> Any:
        return {"equals": self.equals, "in": self.in_, "exists": self.exists}[self.op]


class AudienceSpec(BaseModel):
    """Who a broadcast goes to. ``contacts`` and ``tags`` add up (a contact named, or one
    carrying the tags: any of them, or all with ``tags_match: all``); ``attributes`` then
    narrow the selection. Attributes alone select among all contacts."""

    model_config = ConfigDict(frozen=True)

    contacts: int = Field(default=0, description="how many contacts were named one by one")
    tags: tuple[str, ...] = ()
    tags_match: Literal["any", "all"] = "any"
    attributes: tuple[AttributeCondition, ...] = ()


class Pause(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str = Field(description="'guard' for the quality guard, else who paused it")
    reason: str
    at: datetime


class Broadcast(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    template: TemplateRef
    category: TemplateCategory
    audience: AudienceSpec
    opted_in_only: bool
    state: BroadcastState
    send_at: datetime
    total: int = Field(description="contacts selected when the broadcast was created")
    will_send: int
    excluded_opted_out: int
    quality_risk: int = Field(description="opted-out contacts included with the toggle off")
    planned_until: int = Field(description="the audience is planned up to this contact id")
    planned: int = Field(description="message rows planned so far")
    planning_done: bool
    guard: GuardState
    paused: Pause | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    phone_number_id: str | None = Field(
        default=None, description="the business number it sends from; None: the default"
    )
    quiet_hours: str | None = Field(
        default=None, description="its own quiet hours (HH:MM-HH:MM) when own_quiet_hours"
    )
    own_quiet_hours: bool = Field(
        default=False,
        description="true: quiet_hours (None: none) instead of MARKETING_QUIET_HOURS",
    )


class SendWindow(BaseModel):
    """Local hours in which a step may be sent; ``end`` before ``start`` spans midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError("start and end are the same: the window would be empty")
        return self


class SequenceStep(BaseModel):
    """One step: wait ``delay_seconds`` (from enrolment for the first step, from the
    previous step after), then send a template or a text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delay_seconds: float = Field(ge=0)
    template: TemplateRef | None = None
    text: str | None = Field(default=None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_content(self) -> SequenceStep:
        if (self.template is None) == (self.text is None):
            raise ValueError("give exactly one of template and text")
        return self


class SequenceDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[SequenceStep, ...] = Field(min_length=1, max_length=100)
    send_window: SendWindow | None = None
    phone_number_id: str | None = None
    """The business number its steps go out from; None: the default."""


class MessageSequence(BaseModel):
    """A drip campaign. Editing it makes a new ``version``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    version: int
    definition: SequenceDefinition
    created_at: datetime
    updated_at: datetime


class EnrolmentState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    UNENROLLED = "unenrolled"


class Enrolment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    sequence_id: str
    contact_id: int
    state: EnrolmentState
    source: str = Field(description="api, csv, tag, or flow:<flow id>")
    next_step: int
    anchor_at: datetime = Field(description="the next step's delay counts from here")
    enrolled_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class StepRun(BaseModel):
    """What one step of an enrolment did: its message (whose status moves on as Meta
    reports it), or the failure that kept it from being sent."""

    model_config = ConfigDict(frozen=True)

    step_index: int
    version: int
    due_at: datetime
    ran_at: datetime
    message_id: str | None = None
    status: str = Field(description="the message's status, or 'failed' without one")
    failure: Failure | None = None

"""The flow language's core: a flow, its triggers, and the base every step kind extends.

A flow file is one YAML mapping::

    id: welcome
    name: Welcome menu
    triggers: {keywords: [hi, hello], default: true}
    steps:
      menu:
        kind: ask
        text: How can we help?
        buttons: [{id: order, title: Order status}]
        validate: choice
        save_as: topic

Step kinds live in :mod:`engine.flows.steps`, one module each, and register
themselves with :func:`step_kind`; adding a kind is adding a module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

if TYPE_CHECKING:
    from engine.flows.outcomes import Outcome
    from engine.flows.resumptions import FlowInput
    from engine.flows.run import Run

Path = tuple[str | int, ...]
"""Where a value sits in a flow file, e.g. ``("steps", "menu", "buttons", 0, "title")``."""

StepName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"2h"`` or ``"1d"``.

    >>> parse_duration("2h"), parse_duration(30), parse_duration("500ms")
    (7200.0, 30, 0.5)
    """
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration: write e.g. 30s, 5m, 2h or 1d")
        return float(match[1]) * _UNIT_SECONDS[match[2]]
    return value


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(gt=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
            ],
            "description": "seconds, or e.g. 30s, 5m, 2h, 1d",
        }
    ),
]
"""A duration in seconds; YAML may write ``30s``, ``5m``, ``2h``, ``1d`` or a number."""


class FlowModel(BaseModel):
    """Base of every part of a flow file: frozen, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)


@dataclass(frozen=True, slots=True)
class Exit:
    """A way out of a step, as the validator and the graph see it.

    ``step`` None means "the step written below" (or the end after the last step).
    """

    label: str
    step: str | None
    field: Path
    """Where the target is written, relative to the step (for error lines)."""
    flow: str | None = None
    """Set when the exit starts another flow instead of going to a step."""
    ends: bool = False
    """True when this exit ends the flow (end, handoff)."""


@dataclass(frozen=True, slots=True)
class Source:
    """A jinja2 text (or bare expression) in a step, checked when flows load."""

    field: Path
    text: str
    expression: bool = False


class Step(FlowModel):
    """One node of a flow. Subclasses set ``kind`` to a ``Literal`` and register with
    :func:`step_kind`."""

    kind: str

    waits_for_customer: ClassVar[bool] = False
    """True when the step stops and waits for the customer (it breaks loops)."""

    def exits(self) -> list[Exit]:
        """Every way the step can go on, in the order they are written."""
        return []

    def sources(self) -> Iterator[Source]:
        """Every jinja2 text or expression the step renders."""
        return iter(())

    def run(self, run: Run) -> Outcome:
        raise NotImplementedError

    def resume(self, run: Run, given: FlowInput) -> Outcome:
        """Go on after a wait; only steps that wait implement it."""
        raise NotImplementedError(f"a {self.kind} step does not wait")


STEP_KINDS: dict[str, type[Step]] = {}
"""Every step kind by name. Extend the language by registering a new one."""

S = TypeVar("S", bound=type[Step])


def step_kind(cls: S) -> S:
    """Class decorator: make a step kind known to the loader, the schema and the runtime."""
    model: type[Step] = cls
    name = model.model_fields["kind"].default
    if not isinstance(name, str):
        raise TypeError(f"{cls.__name__}.kind needs a default naming the kind")
    STEP_KINDS[name] = cls
    return cls


class Triggers(FlowModel):
    """What starts the flow when no running flow takes a message."""

    keywords: tuple[str, ...] = Field(
        default=(),
        description="Start when the whole message is one of these (case and accents ignored).",
    )
    first_word: tuple[str, ...] = Field(
        default=(),
        description="Start when the message's first word is one of these (e.g. 'order 1234').",
    )
    default: bool = Field(
        default=False,
        description="Start for any message no running flow or keyword takes (one flow at most).",
    )
    new_contact: bool = Field(
        default=False, description="Start on the first message of a new contact (one flow at most)."
    )


@dataclass(frozen=True, slots=True)
class Flow:
    """A loaded flow: its header, its steps in file order, and where each part was written."""

    id: str
    name: str
    triggers: Triggers
    steps: Mapping[str, Step]
    file: str
    lines: Mapping[Path, int] = field(default_factory=dict, repr=False)
    description: str | None = None
    interruptible: bool = False
    """Whether a keyword of another flow may interrupt this one while it waits for a reply."""
    following: Mapping[str, str | None] = field(default_factory=dict, repr=False)
    """The step written below each step: where ``next`` goes when it is left out."""
    order: tuple[str, ...] = ()
    """Every step name as written, broken steps included."""
    broken: frozenset[str] = frozenset()
    """Steps that were written but could not be read (their problems are reported)."""

    @property
    def first(self) -> str | None:
        return self.order[0] if self.order else next(iter(self.steps), None)

    def line(self, path: Path) -> int:
        """The line of ``path`` in the file, or of its nearest written parent."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def step_line(self, name: str, *path: str | int) -> int:
        return self.line(("steps", name, *path))

    def target(self, name: str, exit: Exit) -> str | None:
        """Where ``exit`` of step ``name`` leads inside this flow (None: the flow ends)."""
        if exit.flow is not None or exit.ends:
            return None
        return exit.step if exit.step is not None else self.following.get(name)

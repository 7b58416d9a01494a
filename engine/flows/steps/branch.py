"""``branch``: the first case that holds picks the next step; ``else`` catches the rest.

.. code-block:: yaml

    route:
      kind: branch
      cases:
        - {choice: order, next: order_status}          # the button or list row tapped
        - {equals: "yes", next: thanks}                # the reply (case and accents ignored)
        - {contains: price, next: prices}
        - {matches: "^\\\\d{4,}$", next: lookup}         # a regular expression
        - {subject: contact.attributes.tier, equals: gold, next: vip}
        - {subject: vars.order.status, equals: shipped, next: shipped}
        - {has_tag: vip, next: vip}
        - {expression: "vars.total > 100 and contact.marketing_opt_in", next: offer}
      else: menu

``subject`` (default ``reply``, the text of the last reply) is ``reply``,
``reply.choice_id``, ``contact.name``, ``contact.wa_id``, ``contact.marketing_opt_in``,
``contact.tags``, ``contact.attributes.<key>`` or ``vars.<name>`` (dots go deeper).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.flows.model import Exit, FlowModel, Source, Step, StepName, step_kind
from engine.flows.outcomes import Go, Outcome
from engine.flows.run import Run
from engine.keywords import normalise

_SUBJECT = re.compile(
    r"^(reply|reply\.(text|choice_id|kind)|contact\.(name|wa_id|user_id|marketing_opt_in|tags)"
    r"|contact\.attributes(\.[A-Za-z0-9_\-]+)+|vars(\.[A-Za-z0-9_\-]+)+)$"
)
OPERATORS = ("equals", "contains", "matches", "choice", "has_tag", "expression")


class Case(FlowModel):
    subject: str = Field(
        default="reply",
        description="reply, reply.choice_id, contact.<field>, contact.attributes.<key> "
        "or vars.<name>",
    )
    equals: str | int | float | bool | None = Field(
        default=None, description="same value (texts: case and accents ignored)"
    )
    contains: str | None = Field(default=None, description="text found in the subject")
    matches: str | None = Field(default=None, description="a regular expression found in it")
    choice: str | None = Field(default=None, description="id of the button or list row tapped")
    has_tag: str | None = Field(default=None, description="the contact has this tag")
    expression: str | None = Field(default=None, description="a jinja2 expression that is true")
    next: StepName

    @field_validator("subject")
    @classmethod
    def _known_subject(cls, subject: str) -> str:
        if not _SUBJECT.match(subject):
            raise ValueError(
                f"{subject!r} is not something a branch can test: use reply, "
                "reply.choice_id, contact.name, contact.tags, contact.attributes.<key> "
                "or vars.<name>"
            )
        return subject

    @field_validator("matches")
    @classmethod
    def _valid_pattern(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"{pattern!r} is not a valid regular expression: {error}"
                ) from None
        return pattern

    @model_validator(mode="after")
    def _one_operator(self) -> Case:
        given = [name for name in OPERATORS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a case needs exactly one of {', '.join(OPERATORS)}"
                + (f" (this one has {' and '.join(given)})" if given else "")
            )
        return self

    def holds(self, run: Run) -> bool:
        if self.expression is not None:
            return bool(run.evaluate(self.expression))
        if self.choice is not None:
            return run.reply is not None and run.reply.get("choice_id") == self.choice
        if self.has_tag is not None:
            return self.has_tag in run.contact["tags"]
        subject = self._subject(run)
        if self.equals is not None:
            return _same(subject, self.equals)
        if subject is None:
            return False
        if self.contains is not None:
            wanted = normalise(self.contains)
            if isinstance(subject, list):
                return any(normalise(str(item)) == wanted for item in subject)
            return wanted in normalise(str(subject))
        assert self.matches is not None
        return re.search(self.matches, str(subject)) is not None

    def _subject(self, run: Run) -> Any:
        path = self.subject.split(".")
        if path == ["reply"]:
            path = ["reply", "text"]
        current: Any = run.context
        for part in path:
            if not isinstance(current, dict):
                return None
            current = current.get(part)
        return current


def _same(subject: Any, expected: str | int | float | bool) -> bool:
    if isinstance(expected, bool) or isinstance(subject, bool):
        return subject is expected or _text(subject) == _text(expected)
    if isinstance(expected, int | float) and isinstance(subject, int | float):
        return subject == expected
    if isinstance(subject, list):
        return any(_text(item) == _text(expected) for item in subject)
    return subject is not None and _text(subject) == _text(expected)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return normalise(str(value))


@step_kind
class BranchStep(Step):
    """Go to the ``next`` of the first case that holds, else to ``else``."""

    kind: Literal["branch"] = "branch"
    cases: tuple[Case, ...] = ()
    otherwise: StepName | None = Field(
        default=None, alias="else", description="required: where replies no case takes go"
    )

    def exits(self) -> list[Exit]:
        exits = [
            Exit(_label(case), case.next, ("cases", index, "next"))
            for index, case in enumerate(self.cases)
        ]
        if self.otherwise is not None:
            exits.append(Exit("else", self.otherwise, ("else",)))
        return exits

    def sources(self) -> Iterator[Source]:
        for index, case in enumerate(self.cases):
            if case.expression is not None:
                yield Source(("cases", index, "expression"), case.expression, expression=True)

    def run(self, run: Run) -> Outcome:
        for case in self.cases:
            if case.holds(run):
                return Go(case.next)
        if self.otherwise is None:
            return run.fail("no case holds and the branch has no else")
        return Go(self.otherwise)


def _label(case: Case) -> str:
    for name in OPERATORS:
        value = getattr(case, name)
        if value is not None:
            subject = (
                ""
                if case.subject == "reply" or name in ("choice", "has_tag")
                else (f"{case.subject} ")
            )
            if name == "expression":
                return str(value)
            return f"{subject}{name.replace('_', ' ')} {value}"
    return "case"  # pragma: no cover - a case has one operator

"""``set``: change the contact (name, attributes, tags, marketing opt-in) and flow variables.

.. code-block:: yaml

    remember:
      kind: set
      name: "{{ vars.full_name }}"
      attributes: {city: "{{ reply.text }}", old_key: null}   # null removes an attribute
      add_tags: [lead]
      remove_tags: [cold]
      vars: {count: "{{ vars.count + 1 }}"}
      marketing_opt_in: "{{ vars.offers == 'yes' }}"
      next: thanks

A value that is exactly one ``{{ expression }}`` keeps the expression's type;
other texts render to text. A change of ``marketing_opt_in`` is recorded in the
consent ledger with source ``bot`` and the flow id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from engine.flows.events import (
    ContactAttributesChanged,
    ContactNameChanged,
    ContactTagsChanged,
    MarketingOptInChanged,
)
from engine.flows.model import Exit, Source, Step, StepName, VariableName, step_kind
from engine.flows.outcomes import Go, Outcome
from engine.flows.render import single_expression
from engine.flows.run import Run
from engine.keywords import normalise

_YES = {"true", "yes", "y", "1", "on", "si", "oui"}
_NO = {"false", "no", "n", "0", "off", "non"}


def _sources(path: tuple[str | int, ...], raw: Any) -> Iterator[Source]:
    if isinstance(raw, str):
        expression = single_expression(raw)
        if expression is None:
            yield Source(path, raw)
        else:
            yield Source(path, expression, expression=True)
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            yield from _sources((*path, index), item)
    elif isinstance(raw, dict):
        for key, item in raw.items():
            yield from _sources((*path, key), item)


def as_bool(value: Any) -> bool | None:
    """A yes/no answer read from a value, or None when it is neither.

    >>> as_bool("Yes"), as_bool(False), as_bool("maybe")
    (True, False, None)
    """
    if isinstance(value, bool):
        return value
    text = normalise(str(value))
    return True if text in _YES else False if text in _NO else None


@step_kind
class SetStep(Step):
    """Change contact fields, tags, marketing opt-in and flow variables."""

    kind: Literal["set"] = "set"
    name: str | None = Field(default=None, description="the contact's name (jinja2)")
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="contact attributes; null removes one"
    )
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    vars: dict[VariableName, Any] = Field(default_factory=dict, description="flow variables")
    marketing_opt_in: bool | str | None = Field(
        default=None, description="true/false, or jinja2 that gives yes/no"
    )
    next: StepName | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> SetStep:
        if not (
            self.name is not None
            or self.attributes
            or self.add_tags
            or self.remove_tags
            or self.vars
            or self.marketing_opt_in is not None
        ):
            raise ValueError(
                "a set step changes something: name, attributes, add_tags, remove_tags, "
                "vars or marketing_opt_in"
            )
        return self

    def exits(self) -> list[Exit]:
        return [Exit("next", self.next, ("next",))]

    def sources(self) -> Iterator[Source]:
        if self.name is not None:
            yield Source(("name",), self.name)
        yield from _sources(("attributes",), self.attributes)
        yield from _sources(("vars",), self.vars)
        yield from _sources(("marketing_opt_in",), self.marketing_opt_in)

    def run(self, run: Run) -> Outcome:
        contact = run.contact
        if self.name is not None:
            name = run.render(self.name).strip()
            if name and name != contact["name"]:
                contact["name"] = name
                run.emit(ContactNameChanged(name))
        if self.attributes:
            changes = {key: run.value(raw) for key, raw in self.attributes.items()}
            problem = _not_json(changes)
            if problem:
                return run.fail(f"attribute {problem}")
            for key, value in changes.items():
                if value is None:
                    contact["attributes"].pop(key, None)
                else:
                    contact["attributes"][key] = value
            run.emit(ContactAttributesChanged(changes))
        if self.add_tags or self.remove_tags:
            tags: list[str] = contact["tags"]
            added = tuple(tag for tag in dict.fromkeys(self.add_tags) if tag not in tags)
            removed = tuple(tag for tag in dict.fromkeys(self.remove_tags) if tag in tags)
            if added or removed:
                contact["tags"] = sorted((set(tags) | set(added)) - set(removed))
                run.emit(ContactTagsChanged(added, removed))
        for key, raw in self.vars.items():
            run.vars[key] = run.value(raw)
        if self.marketing_opt_in is not None:
            value = run.value(self.marketing_opt_in)
            opted_in = as_bool(value)
            if opted_in is None:
                return run.fail(f"marketing_opt_in must be yes or no, not {value!r}")
            if opted_in != contact["marketing_opt_in"]:
                contact["marketing_opt_in"] = opted_in
                run.emit(MarketingOptInChanged(opted_in, run.flow.id))
        return Go(self.next)


def _not_json(values: dict[str, Any]) -> str | None:
    for key, value in values.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return f"{key} gets {value!r}, which is not a JSON value"
    return None

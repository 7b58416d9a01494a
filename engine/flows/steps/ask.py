"""``ask``: send a prompt, wait for the reply, check it, keep it in a variable.

.. code-block:: yaml

    email:
      kind: ask
      text: What is your email address?
      validate: email
      retry_prompt: That does not look like an email address; try again?
      max_retries: 2
      on_failure: give_up
      timeout: {after: 1h, next: reminder}
      save_as: email
      next: thanks

``validate`` is ``number``, ``email``, ``regex`` (with ``pattern``, which the whole
reply must match) or ``choice`` (one of the buttons or list rows: the variable gets
the id). A reply that fails gets ``retry_prompt`` (else the prompt again); after
``max_retries`` retries the flow goes to ``on_failure`` (or ends).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from engine.flows.events import MessageSent
from engine.flows.model import (
    Duration,
    Exit,
    FlowModel,
    Source,
    Step,
    StepName,
    VariableName,
    step_kind,
)
from engine.flows.outcomes import EndStatus, Finish, Go, Outcome, Wait, WaitKind
from engine.flows.resumptions import FlowInput, HttpResult, Timeout
from engine.flows.run import Run
from engine.flows.steps.message import MessageFields
from engine.keywords import normalise
from engine.models.customer_input import CustomerInput

_NUMBER = re.compile(r"^[-+]?\d+(?:[.,]\d+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Validation(StrEnum):
    NUMBER = "number"
    EMAIL = "email"
    REGEX = "regex"
    CHOICE = "choice"


class AskTimeout(FlowModel):
    after: Duration
    next: StepName


@step_kind
class AskStep(MessageFields, Step):
    """Ask the customer something and wait for the answer."""

    kind: Literal["ask"] = "ask"
    check: Validation | None = Field(default=None, alias="validate")
    pattern: str | None = Field(default=None, description="with validate: regex")
    retry_prompt: str | None = Field(default=None, description="jinja2; default: the prompt")
    max_retries: int = Field(default=2, ge=0, le=10)
    on_failure: StepName | None = Field(
        default=None, description="after max_retries invalid replies (default: the flow ends)"
    )
    timeout: AskTimeout | None = None
    save_as: VariableName | None = Field(default=None, description="the variable of the answer")
    interruptible: bool | None = Field(
        default=None,
        description="whether another flow's keyword may interrupt here (default: the flow's)",
    )
    next: StepName | None = None

    waits_for_customer = True

    def exits(self) -> list[Exit]:
        exits = [Exit("answer", self.next, ("next",))]
        if self.on_failure is not None:
            exits.append(Exit("invalid", self.on_failure, ("on_failure",)))
        else:
            exits.append(Exit("invalid", None, ("max_retries",), ends=True))
        if self.timeout is not None:
            exits.append(Exit("timeout", self.timeout.next, ("timeout", "next")))
        return exits

    def sources(self) -> Iterator[Source]:
        yield from self.message_sources()
        if self.retry_prompt is not None:
            yield Source(("retry_prompt",), self.retry_prompt)

    def run(self, run: Run) -> Outcome:
        run.attempts = 0
        return self._prompt(run, None)

    def _prompt(self, run: Run, text: str | None) -> Outcome:
        content = self.build(run, text)
        if isinstance(content, str):
            return run.fail(content)
        run.emit(MessageSent(content))
        return Wait(WaitKind.REPLY, None if self.timeout is None else self.timeout.after)

    def resume(self, run: Run, given: FlowInput) -> Outcome:
        if isinstance(given, Timeout):
            assert self.timeout is not None, "a timeout came for an ask without one"
            return Go(self.timeout.next)
        if isinstance(given, HttpResult):
            raise ValueError("an ask waits for the customer, not an http answer")
        answer = self.accept(given)
        if answer is None:
            run.attempts += 1
            if run.attempts > self.max_retries:
                return Go(self.on_failure) if self.on_failure else Finish(EndStatus.FAILED)
            prompt = self.retry_prompt if self.retry_prompt is not None else self.text
            return self._prompt(run, prompt)
        if self.save_as is not None:
            run.vars[self.save_as] = answer
        return Go(self.next)

    def accept(self, given: CustomerInput) -> Any:
        """The answer to keep, or None when the reply does not pass ``validate``."""
        text = (given.text or "").strip()
        match self.check:
            case None:
                return given.choice_id or text or given.media_id or given.kind.value
            case Validation.NUMBER:
                if not _NUMBER.match(text):
                    return None
                number = float(text.replace(",", "."))
                return int(number) if number.is_integer() and "." not in text else number
            case Validation.EMAIL:
                return text if _EMAIL.match(text) else None
            case Validation.REGEX:
                assert self.pattern is not None
                return text if re.fullmatch(self.pattern, text) else None
            case Validation.CHOICE:
                return self._choice(given)

    def _choice(self, given: CustomerInput) -> str | None:
        choices = self.choices()
        if given.choice_id is not None:
            for choice_id, _ in choices:
                if choice_id == given.choice_id:
                    return choice_id
        typed = normalise(given.text or "")
        for number, (choice_id, title) in enumerate(choices, start=1):
            if typed in (normalise(title), normalise(choice_id), str(number)):
                return choice_id
        return None

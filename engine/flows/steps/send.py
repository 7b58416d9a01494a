"""``send``: a message, then on to ``next``.

.. code-block:: yaml

    thanks:
      kind: send
      text: "Thanks {{ contact.name or 'there' }}!"
      next: menu
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from engine.flows.events import MessageSent
from engine.flows.model import Exit, Source, Step, StepName, step_kind
from engine.flows.outcomes import Go, Outcome
from engine.flows.run import Run
from engine.flows.steps.message import MessageFields


@step_kind
class SendStep(MessageFields, Step):
    """Send a text, reply buttons, a list, media or a template of the catalogue."""

    kind: Literal["send"] = "send"
    next: StepName | None = None

    def exits(self) -> list[Exit]:
        return [Exit("next", self.next, ("next",))]

    def sources(self) -> Iterator[Source]:
        return self.message_sources()

    def run(self, run: Run) -> Outcome:
        content = self.build(run)
        if isinstance(content, str):
            return run.fail(content)
        run.emit(MessageSent(content))
        return Go(self.next)

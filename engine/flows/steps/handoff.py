"""``handoff``: give the conversation to the agents; the flow ends and the bot stays
silent until an agent releases the conversation.

.. code-block:: yaml

    to_agent:
      kind: handoff
      queue: billing
      note: "Asked about invoice {{ vars.invoice }}"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from engine.flows.events import HandedOff
from engine.flows.model import Exit, Source, Step, step_kind
from engine.flows.outcomes import EndStatus, Finish, Outcome
from engine.flows.run import Run


@step_kind
class HandoffStep(Step):
    """Hand the conversation to the agents' queue."""

    kind: Literal["handoff"] = "handoff"
    queue: str | None = Field(default=None, max_length=64, description="the agents' queue")
    note: str | None = Field(default=None, description="shown to the agent (jinja2)")

    def exits(self) -> list[Exit]:
        return [Exit("agents", None, (), ends=True)]

    def sources(self) -> Iterator[Source]:
        if self.note is not None:
            yield Source(("note",), self.note)

    def run(self, run: Run) -> Outcome:
        note = None if self.note is None else run.render(self.note)
        run.emit(HandedOff(run.flow.id, self.queue, note))
        return Finish(EndStatus.HANDED_OFF)

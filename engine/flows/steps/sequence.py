"""``sequence``: enrol the contact in a sequence (a drip campaign), or take them out.

.. code-block:: yaml

    join_drip:
      kind: sequence
      action: enrol          # or unenrol
      sequence: onboarding   # the sequence's name
      next: thanks

Enrolling a contact who is already in the sequence, or unenrolling one who is not,
changes nothing. A sequence that does not exist when the step runs is logged and the
flow goes on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.flows.events import SequenceRequested
from engine.flows.model import Exit, Step, StepName, step_kind
from engine.flows.outcomes import Go, Outcome
from engine.flows.run import Run


@step_kind
class SequenceActionStep(Step):
    """Enrol the contact in a sequence, or unenrol them."""

    kind: Literal["sequence"] = "sequence"
    action: Literal["enrol", "unenrol"] = "enrol"
    sequence: str = Field(min_length=1, max_length=200, description="the sequence's name")
    next: StepName | None = None

    def exits(self) -> list[Exit]:
        return [Exit("next", self.next, ("next",))]

    def run(self, run: Run) -> Outcome:
        run.emit(SequenceRequested(self.action, self.sequence, run.flow.id))
        return Go(self.next)

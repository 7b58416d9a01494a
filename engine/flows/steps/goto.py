"""``goto``: go to another step of the flow.

.. code-block:: yaml

    again:
      kind: goto
      to: menu
"""

from __future__ import annotations

from typing import Literal

from engine.flows.model import Exit, Step, StepName, step_kind
from engine.flows.outcomes import Go, Outcome
from engine.flows.run import Run


@step_kind
class GotoStep(Step):
    """Jump to ``to``."""

    kind: Literal["goto"] = "goto"
    to: StepName

    def exits(self) -> list[Exit]:
        return [Exit("goto", self.to, ("to",))]

    def run(self, run: Run) -> Outcome:
        return Go(self.to)

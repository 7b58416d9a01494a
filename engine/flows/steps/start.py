"""``start``: end this flow and start another one from its first step.

.. code-block:: yaml

    offers:
      kind: start
      flow: consent

The new flow starts with no variables; the contact and the last reply carry over.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.flows.model import Exit, Step, step_kind
from engine.flows.outcomes import Enter, Outcome
from engine.flows.run import Run


@step_kind
class StartStep(Step):
    """Start the flow with id ``flow``."""

    kind: Literal["start"] = "start"
    flow: str = Field(description="the id of the flow to start")

    def exits(self) -> list[Exit]:
        return [Exit(f"start {self.flow}", None, ("flow",), flow=self.flow)]

    def run(self, run: Run) -> Outcome:
        return Enter(self.flow)

"""``end``: the flow is over; the next message goes to the triggers again.

.. code-block:: yaml

    done:
      kind: end
"""

from __future__ import annotations

from typing import Literal

from engine.flows.model import Exit, Step, step_kind
from engine.flows.outcomes import Finish, Outcome
from engine.flows.run import Run


@step_kind
class EndStep(Step):
    """End the flow."""

    kind: Literal["end"] = "end"

    def exits(self) -> list[Exit]:
        return [Exit("end", None, (), ends=True)]

    def run(self, run: Run) -> Outcome:
        return Finish()

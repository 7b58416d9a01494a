"""The step kinds, one module each; importing this package registers them all.

To add a kind: write a module with a :class:`engine.flows.model.Step` subclass
decorated with :func:`engine.flows.model.step_kind`, and import it below. The
loader, the validator, the JSON Schema, the graph and the runtime pick it up.
"""

from engine.flows.steps import (
    ask,
    branch,
    end,
    goto,
    handoff,
    http,
    send,
    sequence,  # campaigns
    set,
    start,
)

__all__ = ["ask", "branch", "end", "goto", "handoff", "http", "send", "sequence", "set", "start"]

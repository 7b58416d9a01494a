"""Bot flows: the YAML flow language, its validator and its pure runtime.

- :mod:`engine.flows.model` and :mod:`engine.flows.steps`: the language, one module
  per step kind;
- :mod:`engine.flows.loader` and :mod:`engine.flows.validate`: YAML with line
  numbers into models, and every problem at once;
- :mod:`engine.flows.runtime`: ``start`` and ``resume`` return a new session and
  events, with no I/O;
- :mod:`engine.flows.routing`: which flow a message goes to (triggers, interrupts);
- :mod:`engine.flows.bot`: applies events in the store (the bot's
  :class:`~engine.inbound.handoff.ConversationHandler`).
"""

from engine.flows.flowset import FlowSet, FlowsInvalid, check_flows, load_flow_set
from engine.flows.loader import Problem
from engine.flows.runtime import Runtime, Trigger, TriggerKind
from engine.flows.session import Session, SessionStatus

__all__ = [
    "FlowSet",
    "FlowsInvalid",
    "Problem",
    "Runtime",
    "Session",
    "SessionStatus",
    "Trigger",
    "TriggerKind",
    "check_flows",
    "load_flow_set",
]

"""The working state of one flow while the runtime steps through it (never stored)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.flows import render
from engine.flows.events import Event, FlowError
from engine.flows.model import Flow
from engine.flows.outcomes import EndStatus, Finish
from engine.models.contact import Contact


def contact_view(contact: Contact) -> dict[str, Any]:
    """The contact as templates see it: ``contact.name``, ``contact.attributes.city``..."""
    return {
        "id": contact.id,
        "wa_id": contact.wa_id,
        "user_id": contact.user_id,
        "name": contact.name,
        "marketing_opt_in": contact.marketing_opt_in,
        "attributes": dict(contact.attributes),
        "tags": list(contact.tags),
    }


class Run:
    """What a step reads and changes: variables, the contact, the last reply, events."""

    __slots__ = (
        "_context",
        "attempts",
        "contact",
        "env",
        "events",
        "flow",
        "http_calls",
        "reply",
        "step",
        "vars",
    )

    def __init__(
        self,
        flow: Flow,
        contact: dict[str, Any],
        vars: dict[str, Any],
        reply: dict[str, Any] | None,
        events: list[Event],
        env: Mapping[str, str],
    ) -> None:
        self.flow = flow
        self.contact = contact
        self.vars = vars
        self.reply = reply
        self.events = events
        self.env = env
        self.step: str | None = None
        self.attempts = 0
        self.http_calls = 0
        self._context: dict[str, Any] | None = None

    @property
    def context(self) -> dict[str, Any]:
        """What templates see: ``contact``, ``vars``, ``reply``, ``flow`` and ``env``."""
        if self._context is None:
            self._context = {
                "contact": self.contact,
                "vars": self.vars,
                "reply": self.reply,
                "flow": {"id": self.flow.id, "name": self.flow.name},
                "env": self.env,
            }
        return self._context

    def set_reply(self, reply: dict[str, Any] | None) -> None:
        self.reply = reply
        self._context = None

    def enter(self, flow: Flow) -> None:
        """Carry on in another flow: its own variables, the same contact and reply."""
        self.flow = flow
        self.vars = {}
        self.step = None
        self.attempts = 0
        self._context = None

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def render(self, text: str) -> str:
        return render.render(text, self.context)

    def evaluate(self, expression: str) -> Any:
        return render.evaluate(expression, self.context)

    def value(self, raw: Any) -> Any:
        return render.value(raw, self.context)

    def fail(self, message: str) -> Finish:
        """End the flow with an error the author can read."""
        self.emit(FlowError(self.flow.id, self.step, message))
        return Finish(EndStatus.FAILED)

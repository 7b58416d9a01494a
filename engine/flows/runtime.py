"""The flow runtime: pure functions from (session, input) to (new session, events).

Like goflow's engine it does no I/O: it reads the flows it was given and returns
events (messages to send, contact changes, a handoff, an http call to make, a
wait) for the caller to apply. Time, the store and the network stay outside, so
the same input always gives the same output.

>>> from datetime import UTC, datetime
>>> from engine.flows.loader import parse_flow
>>> flow, _ = parse_flow('''
... id: hello
... name: Hello
... steps:
...   greet: {kind: send, text: "Hi {{ contact.name }}!"}
... ''', "hello.yaml")
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> ann = Contact(id=1, wa_id="16505551234", name="Ann", marketing_opt_in=True,
...               created_at=now, updated_at=now)
>>> session, events = Runtime(FlowSet.of([flow])).start(flow, ann, Trigger.manual())
>>> session.status.value, [event.describe() for event in events]
('completed', ['flow hello started', 'message (text)', 'flow hello ended (completed)'])
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.flows.events import (
    Event,
    FlowEnded,
    FlowError,
    FlowStarted,
    InputIgnored,
    Waiting,
)
from engine.flows.flowset import FlowSet
from engine.flows.model import Flow
from engine.flows.outcomes import EndStatus, Enter, Finish, Go, Outcome, Wait, WaitKind
from engine.flows.render import RenderError
from engine.flows.resumptions import FlowInput, HttpResult, Timeout
from engine.flows.run import Run, contact_view
from engine.flows.session import Session, SessionStatus
from engine.models.contact import Contact
from engine.models.customer_input import CustomerInput

MAX_STEPS_PER_INPUT = 100
"""Steps one input may run; more is a loop that never waits (the validator catches most)."""

MAX_HTTP_CALLS_PER_INPUT = 10
"""http calls one customer message may lead to before the flow is stopped."""


class TriggerKind(StrEnum):
    KEYWORD = "keyword"
    DEFAULT = "default"
    NEW_CONTACT = "new_contact"
    MANUAL = "manual"  # the chat tool, tests


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why a flow starts, and the message that started it (templates see it as ``reply``)."""

    kind: TriggerKind
    input: CustomerInput | None = None

    @classmethod
    def manual(cls, input: CustomerInput | None = None) -> Trigger:
        return cls(TriggerKind.MANUAL, input)


def reply_view(given: CustomerInput | None) -> dict[str, Any] | None:
    """The customer's message as templates see it: ``reply.text``, ``reply.choice_id``..."""
    if given is None:
        return None
    return {
        "kind": given.kind.value,
        "text": given.text,
        "choice_id": given.choice_id,
        "media_type": given.media_type,
        "media_id": given.media_id,
        "latitude": given.latitude,
        "longitude": given.longitude,
    }


class Runtime:
    """Runs the flows of one :class:`FlowSet`."""

    def __init__(
        self,
        flows: FlowSet,
        *,
        max_steps: int = MAX_STEPS_PER_INPUT,
        max_http_calls: int = MAX_HTTP_CALLS_PER_INPUT,
    ) -> None:
        self.flows = flows
        self.max_steps = max_steps
        self.max_http_calls = max_http_calls

    def start(
        self, flow: Flow | str, contact: Contact, trigger: Trigger
    ) -> tuple[Session, list[Event]]:
        """Start ``flow`` for ``contact`` and run it to its first wait or its end."""
        if isinstance(flow, str):
            found = self.flows.get(flow)
            if found is None:
                raise KeyError(f"no flow with id {flow!r}")
            flow = found
        events: list[Event] = [FlowStarted(flow.id)]
        run = Run(
            flow, contact_view(contact), {}, reply_view(trigger.input), events, self.flows.env
        )
        return self._follow(run, contact, Go(flow.first), None, 0)

    def resume(self, session: Session, given: FlowInput) -> tuple[Session, list[Event]]:
        """Go on with a waiting ``session``: the customer's reply, a timeout or an http answer.

        An input the session is not waiting for comes back as :class:`InputIgnored`
        with the session unchanged.
        """
        refusal = _refusal(session, given)
        if refusal is not None:
            return session, [InputIgnored(refusal)]
        events: list[Event] = []
        flow = self.flows.get(session.flow_id)
        step = None if flow is None or session.step is None else flow.steps.get(session.step)
        if flow is None or step is None:
            missing = (
                f"flow {session.flow_id} is no longer loaded"
                if flow is None
                else f"step {session.step} is no longer in the flow"
            )
            events.append(FlowError(session.flow_id, session.step, missing))
            events.append(FlowEnded(session.flow_id, EndStatus.FAILED))
            return session.model_copy(update={"status": SessionStatus.FAILED}), events
        run = Run(
            flow,
            contact_view(session.contact),
            dict(session.vars),
            session.reply,
            events,
            self.flows.env,
        )
        run.step = session.step
        run.attempts = session.attempts
        run.http_calls = session.http_calls
        if isinstance(given, CustomerInput):
            run.set_reply(reply_view(given))
            run.http_calls = 0
        try:
            outcome = step.resume(run, given)
        except RenderError as error:
            outcome = run.fail(str(error))
        return self._follow(run, session.contact, outcome, session.step, session.wait_seq)

    def _follow(
        self, run: Run, contact: Contact, outcome: Outcome, current: str | None, wait_seq: int
    ) -> tuple[Session, list[Event]]:
        steps = 0
        flow = run.flow
        while True:
            if isinstance(outcome, Go):
                target = outcome.step
                if target is None and current is not None:
                    target = flow.following.get(current)
                if target is None:
                    outcome = Finish()
                    continue
                steps += 1
                if steps > self.max_steps:
                    outcome = run.fail(
                        f"stopped after {self.max_steps} steps without waiting for the "
                        "customer; the flow loops"
                    )
                    continue
                step = flow.steps.get(target)
                current = run.step = target
                if step is None:
                    outcome = run.fail(f"there is no step {target}")
                    continue
                try:
                    outcome = step.run(run)
                except RenderError as error:
                    outcome = run.fail(str(error))
            elif isinstance(outcome, Enter):
                following = self.flows.get(outcome.flow)
                if following is None:
                    outcome = run.fail(f"there is no flow {outcome.flow} to start")
                    continue
                run.emit(FlowEnded(flow.id, EndStatus.COMPLETED))
                run.emit(FlowStarted(following.id))
                flow = following
                run.enter(following)
                current = None
                outcome = Go(following.first)
            elif isinstance(outcome, Wait):
                if outcome.kind is WaitKind.HTTP and run.http_calls > self.max_http_calls:
                    outcome = run.fail(
                        f"stopped after {self.max_http_calls} http calls without waiting "
                        "for the customer"
                    )
                    continue
                run.emit(Waiting(outcome.kind, outcome.timeout_seconds))
                return self._session(
                    run, contact, SessionStatus.WAITING, current, outcome, wait_seq + 1
                ), run.events
            else:
                run.emit(FlowEnded(flow.id, outcome.status))
                return self._session(
                    run, contact, SessionStatus(outcome.status.value), None, None, wait_seq
                ), run.events

    @staticmethod
    def _session(
        run: Run,
        contact: Contact,
        status: SessionStatus,
        step: str | None,
        wait: Wait | None,
        wait_seq: int,
    ) -> Session:
        view = run.contact
        changed = contact.model_copy(
            update={
                "name": view["name"],
                "attributes": view["attributes"],
                "tags": tuple(view["tags"]),
                "marketing_opt_in": view["marketing_opt_in"],
            }
        )
        return Session.model_construct(
            flow_id=run.flow.id,
            contact=changed,
            status=status,
            step=step,
            wait=None if wait is None else wait.kind,
            timeout_seconds=None if wait is None else wait.timeout_seconds,
            wait_seq=wait_seq,
            attempts=run.attempts,
            http_calls=run.http_calls,
            vars=run.vars,
            reply=run.reply,
        )


def _refusal(session: Session, given: FlowInput) -> str | None:
    if session.status is not SessionStatus.WAITING:
        return f"the flow has ended ({session.status.value})"
    if isinstance(given, CustomerInput) and session.wait is not WaitKind.REPLY:
        return "the flow is waiting for an http answer"
    if isinstance(given, HttpResult) and session.wait is not WaitKind.HTTP:
        return "the flow is not waiting for an http answer"
    if isinstance(given, Timeout) and (
        session.wait is not WaitKind.REPLY or session.timeout_seconds is None
    ):
        return "the flow is not waiting with a timeout"
    return None

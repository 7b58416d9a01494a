"""Which flow a customer's message goes to: the running one, a keyword's, the new-contact
flow or the default flow. Pure, like the runtime; the bot handler and the chat tool
share it.

A reaction, an edit, a deletion or a call-permission reply is not something the
customer wrote for an answer: it starts no flow and answers no waiting one.

Order: a flow waiting for a reply takes the message, unless the customer typed a
keyword and the waiting flow (or its ask step) is ``interruptible``. With no
flow waiting: a keyword (whole message, then first word), then the new-contact flow
for a contact's first message, then the default flow.
"""

from __future__ import annotations

from engine.flows.events import Event, FlowEnded, FlowError, InputIgnored
from engine.flows.flowset import FlowSet
from engine.flows.model import Flow
from engine.flows.outcomes import EndStatus
from engine.flows.runtime import Runtime, Trigger, TriggerKind
from engine.flows.session import Session
from engine.flows.steps.ask import AskStep
from engine.models.contact import Contact
from engine.models.customer_input import CustomerInput, InputKind


def choose(
    flows: FlowSet, given: CustomerInput, *, new_contact: bool
) -> tuple[Flow | None, TriggerKind]:
    """The flow a message starts when no flow is waiting for it."""
    flow = flows.by_keyword(given.text)
    if flow is not None:
        return flow, TriggerKind.KEYWORD
    if new_contact and flows.new_contact is not None:
        return flows.flows[flows.new_contact], TriggerKind.NEW_CONTACT
    if flows.default is not None:
        return flows.flows[flows.default], TriggerKind.DEFAULT
    return None, TriggerKind.DEFAULT


def interruptible(flows: FlowSet, session: Session) -> bool:
    """Whether a keyword may end ``session`` where it waits."""
    flow = flows.get(session.flow_id)
    if flow is None:
        return True
    step = flow.steps.get(session.step or "")
    if isinstance(step, AskStep) and step.interruptible is not None:
        return step.interruptible
    return flow.interruptible


def converse(
    runtime: Runtime,
    session: Session | None,
    contact: Contact,
    given: CustomerInput,
    *,
    new_contact: bool = False,
) -> tuple[Session | None, list[Event]]:
    """The session after ``given`` (None when no flow takes it) and the events.

    The session comes back as the same object when nothing changed.
    """
    flows = runtime.flows
    if not given.said_to_the_bot:
        return session, [InputIgnored(f"a {given.kind.value} is not answered")]
    notes: list[Event] = []
    if session is not None and not session.status.ended and not _still_loaded(flows, session):
        # A reload removed where the session waited: the message starts afresh.
        notes.append(
            FlowError(
                session.flow_id,
                session.step,
                "the step this conversation waited at is no longer loaded; "
                "the message goes to the triggers",
            )
        )
        session = None
    if session is not None and not session.status.ended:
        if session.waiting_for_http:
            return session, [InputIgnored("the flow is waiting for an http answer")]
        # A tapped button or row answers the waiting flow, even if its title is a keyword.
        keyword = flows.by_keyword(given.text) if given.kind is InputKind.TEXT else None
        if keyword is not None and interruptible(flows, session):
            ended: list[Event] = [FlowEnded(session.flow_id, EndStatus.INTERRUPTED)]
            started, events = runtime.start(keyword, contact, Trigger(TriggerKind.KEYWORD, given))
            return started, ended + events
        return runtime.resume(session.with_contact(contact), given)
    flow, kind = choose(flows, given, new_contact=new_contact)
    if flow is None:
        return None, notes
    started, events = runtime.start(flow, contact, Trigger(kind, given))
    return started, notes + events


def _still_loaded(flows: FlowSet, session: Session) -> bool:
    flow = flows.get(session.flow_id)
    return flow is not None and session.step in flow.steps

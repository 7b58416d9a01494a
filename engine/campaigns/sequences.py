"""Sequences (drip campaigns): ordered steps, each a delay and a template or a text.

A contact is enrolled at most once at a time. The next step of an enrolment waits as
its timer in the due-work table; when it comes due the step goes through
:func:`engine.outbound.enqueue.enqueue` on the ``sequence`` channel, so the send rules
decide: a MARKETING step for a contact who is opted out at that moment is recorded as
failed (``marketing_opt_out``, with the rule's reason) and never sent, and a text step
when the contact has not written in the last 24 hours fails (``window_closed``) without
a message; either way the contact moves on. Each step's delay counts from the time
the previous step was due, so a failed step keeps the schedule of the next.

Editing a sequence makes a new version; timers set under an older one are stale: when
they fire, the step is worked out again from the current definition (and waits if its
time has not come), so no step of an old version is ever sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.campaigns.refusals import AlreadyEnrolled, InvalidField, NotEnrolled
from engine.campaigns.schedule import contact_zone, next_send_time
from engine.ids import new_id
from engine.models.campaign import (
    Enrolment,
    EnrolmentState,
    MessageSequence,
    SequenceDefinition,
    SequenceStep,
)
from engine.models.contact import Contact
from engine.models.content import OutboundContent, TemplateContent, TextContent
from engine.models.message import Channel, Failure, MessageStatus
from engine.outbound.enqueue import OutboundRequest, Refused, TemplateProblem, enqueue, resolve
from engine.store import Tx
from engine.store.campaign_work import WorkItem, WorkKind

FLOW_SOURCE = "flow:"

INVALID_TEMPLATE = "invalid_template"


TEMPLATE_RECHECK = timedelta(minutes=15)
"""How often a step whose template Meta paused looks again whether it may go."""


async def _template_paused(tx: Tx, step: SequenceStep) -> bool:
    if step.template is None:
        return False
    template = await tx.templates.get(step.template.name, step.template.language)
    return template is not None and not template.approved


def step_content(step: SequenceStep) -> OutboundContent:
    if step.template is not None:
        return TemplateContent(
            name=step.template.name, language=step.template.language, params=step.template.params
        )
    assert step.text is not None
    return TextContent(body=step.text)


async def check_definition(tx: Tx, definition: SequenceDefinition) -> None:
    """InvalidField naming the step whose template the catalogue cannot send, or the
    business number when it is not registered."""
    number = definition.phone_number_id
    if number is not None and await tx.numbers.get(number) is None:
        raise InvalidField("phone_number_id", f"business number {number!r} is not registered")
    for index, step in enumerate(definition.steps):
        if step.template is None:
            continue
        try:
            await resolve(tx, step_content(step))
        except TemplateProblem as problem:
            raise InvalidField(f"steps.{index}.{problem.field}", problem.message) from None


def step_due(sequence: MessageSequence, index: int, anchor: datetime, contact: Contact) -> datetime:
    """When step ``index`` goes: its delay after ``anchor``, moved into the send window."""
    definition = sequence.definition
    moment = anchor + timedelta(seconds=definition.steps[index].delay_seconds)
    if definition.send_window is None:
        return moment
    zone = contact_zone(contact.wa_id, contact.attributes)
    return next_send_time(moment, definition.send_window, zone)


async def enrol(
    tx: Tx, sequence: MessageSequence, contact: Contact, *, source: str, now: datetime
) -> Enrolment:
    """Enrol ``contact``; AlreadyEnrolled while they are in the sequence."""
    enrolment = Enrolment(
        id=new_id(),
        sequence_id=sequence.id,
        contact_id=contact.id,
        state=EnrolmentState.ACTIVE,
        source=source,
        next_step=0,
        anchor_at=now,
        enrolled_at=now,
        updated_at=now,
    )
    if not await tx.sequences.enrol(enrolment):
        raise AlreadyEnrolled(f"{contact.address} is already in sequence {sequence.name}")
    await tx.campaign_work.schedule(
        WorkKind.SEQUENCE_STEP,
        enrolment.id,
        step_due(sequence, 0, now, contact),
        step=0,
        version=sequence.version,
    )
    return enrolment


async def unenrol(
    tx: Tx, sequence: MessageSequence, contact: Contact, *, now: datetime
) -> Enrolment:
    """Stop the contact's enrolment: no further step is sent."""
    enrolment = await tx.sequences.latest_enrolment(sequence.id, contact.id)
    if enrolment is None or enrolment.state is not EnrolmentState.ACTIVE:
        raise NotEnrolled(f"{contact.address} is not in sequence {sequence.name}")
    await tx.campaign_work.cancel(WorkKind.SEQUENCE_STEP, enrolment.id)
    await tx.sequences.finish(enrolment.id, EnrolmentState.UNENROLLED, now)
    found = await tx.sequences.enrolment(enrolment.id)
    assert found is not None
    return found


async def edit(
    tx: Tx, sequence_id: str, *, name: str, definition: SequenceDefinition, now: datetime
) -> MessageSequence:
    """A new version of the sequence. Every waiting timer is looked at again now, so
    each enrolment's next step follows the new definition."""
    await check_definition(tx, definition)
    sequence = await tx.sequences.replace(sequence_id, name=name, definition=definition, now=now)
    await tx.sequences.bring_timers_forward(sequence_id, now)
    return sequence


@dataclass(frozen=True, slots=True)
class StepResult:
    queued: bool = False


async def run_step(tx: Tx, *, item: WorkItem, owner: str, now: datetime) -> StepResult:
    """The job of an enrolment's timer: send (or fail) its next step and set the timer
    for the one after, or wait longer if the step's time has moved (an edit)."""
    if await tx.campaign_work.held(owner, item.id) is None:
        return StepResult()  # another worker took the timer over
    enrolment = await tx.sequences.enrolment(item.subject)
    sequence = None if enrolment is None else await tx.sequences.get(enrolment.sequence_id)
    contact = None if enrolment is None else await tx.contacts.get_by_id(enrolment.contact_id)
    if (
        enrolment is None
        or enrolment.state is not EnrolmentState.ACTIVE
        or sequence is None
        or contact is None
    ):
        await tx.campaign_work.cancel(WorkKind.SEQUENCE_STEP, item.subject)
        return StepResult()
    steps = sequence.definition.steps
    index = enrolment.next_step
    if index >= len(steps):  # an edit removed the steps that were left
        await _complete(tx, enrolment, now)
        return StepResult()
    due = step_due(sequence, index, enrolment.anchor_at, contact)
    if due > now:
        # Set under an older version (or the contact's time zone changed): not yet.
        await tx.campaign_work.schedule(
            WorkKind.SEQUENCE_STEP, enrolment.id, due, step=index, version=sequence.version
        )
        return StepResult()

    if await _template_paused(tx, steps[index]):
        # Meta paused or disabled the step's template: the step waits, looked at again
        # a while later, and the contact does not move on meanwhile.
        await tx.campaign_work.schedule(
            WorkKind.SEQUENCE_STEP,
            enrolment.id,
            now + TEMPLATE_RECHECK,
            step=index,
            version=sequence.version,
        )
        return StepResult()

    message_id, failure, queued = None, None, False
    content = step_content(steps[index])
    try:
        enqueued = await enqueue(
            tx,
            OutboundRequest(
                contact,
                Channel.SEQUENCE,
                content,
                phone_number_id=sequence.definition.phone_number_id,
            ),
            now=now,
        )
    except TemplateProblem as problem:
        failure = Failure(code=INVALID_TEMPLATE, reason=f"{problem.field}: {problem.message}")
    except Refused as refused:  # a text step outside the 24-hour window
        failure = Failure(code=refused.code, reason=refused.reason)
    else:
        assert enqueued.message is not None, "the sequence channel never asks to confirm"
        message_id = enqueued.message.id
        failure = enqueued.message.failure
        queued = enqueued.message.status is MessageStatus.QUEUED
    await tx.sequences.record_run(
        enrolment.id,
        step_index=index,
        version=sequence.version,
        due_at=due,
        ran_at=now,
        message_id=message_id,
        failure=failure,
    )
    following = index + 1
    if following >= len(steps):
        await _complete(tx, enrolment, now)
        return StepResult(queued)
    # The next delay counts from when this step was due, sent or not.
    await tx.sequences.advance(enrolment.id, next_step=following, anchor_at=due, now=now)
    await tx.campaign_work.schedule(
        WorkKind.SEQUENCE_STEP,
        enrolment.id,
        step_due(sequence, following, due, contact),
        step=following,
        version=sequence.version,
    )
    return StepResult(queued)


async def _complete(tx: Tx, enrolment: Enrolment, now: datetime) -> None:
    await tx.campaign_work.cancel(WorkKind.SEQUENCE_STEP, enrolment.id)
    await tx.sequences.finish(enrolment.id, EnrolmentState.COMPLETED, now)


class UnknownSequence(LookupError):
    pass


async def from_flow(
    tx: Tx, contact: Contact, *, action: str, sequence_name: str, flow_id: str, now: datetime
) -> bool:
    """A flow's ``sequence`` step: enrol or unenrol the contact; True when it changed
    anything (enrolling someone already in, or unenrolling someone not in, does not)."""
    sequence = await tx.sequences.get_by_name(sequence_name)
    if sequence is None:
        raise UnknownSequence(f"there is no sequence named {sequence_name!r}")
    try:
        if action == "unenrol":
            await unenrol(tx, sequence, contact, now=now)
        else:
            await enrol(tx, sequence, contact, source=FLOW_SOURCE + flow_id, now=now)
    except (AlreadyEnrolled, NotEnrolled):
        return False
    return True

"""The sequence use cases the REST API offers: create and edit a sequence, enrol
contacts (one, a CSV file's numbers, everyone with a tag), unenrol one, and read an
enrolment's record of every step. A refusal is a
:class:`engine.campaigns.refusals.CampaignRefusal` naming the field that is wrong, and
changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.campaigns import sequences
from engine.campaigns.enrol_csv import ParsedNumbers
from engine.campaigns.refusals import (
    AlreadyEnrolled,
    InvalidField,
    NotEnrolled,
    SequenceExists,
    SequenceNotFound,
)
from engine.contacts.csv_import import RowError
from engine.contacts.directory import require_contact
from engine.ids import new_id
from engine.models.campaign import (
    Enrolment,
    EnrolmentState,
    MessageSequence,
    SequenceDefinition,
)
from engine.models.contact import Contact
from engine.models.message import Failure
from engine.store import AlreadyExists, NotFound, Store, Tx
from engine.store.campaign_work import WorkKind

ENROL_BATCH = 500
"""Contacts enrolled per store transaction (CSV files and tags)."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What a step of an enrolment did, or that it is still to come (``pending``, due
    at ``due_at``) or will not come (``cancelled``)."""

    index: int
    status: str
    message_id: str | None = None
    failure: Failure | None = None
    due_at: datetime | None = None
    ran_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EnrolmentRecord:
    sequence: MessageSequence
    enrolment: Enrolment
    contact: Contact
    steps: tuple[StepRecord, ...]


@dataclass(frozen=True, slots=True)
class Enrolled:
    """What enrolling many contacts did."""

    enrolled: int
    already_enrolled: int
    errors: tuple[RowError, ...] = ()
    """The lines that enrolled nobody, in order."""


async def require_sequence(tx: Tx, sequence_id: str) -> MessageSequence:
    sequence = await tx.sequences.get(sequence_id)
    if sequence is None:
        raise SequenceNotFound(sequence_id)
    return sequence


async def record(
    tx: Tx, sequence: MessageSequence, enrolment: Enrolment, contact: Contact
) -> EnrolmentRecord:
    """The enrolment and every step: what it did (status, message id, failure), or that
    it is still to come."""
    runs = {run.step_index: run for run in await tx.sequences.runs(enrolment.id)}
    timer = await tx.campaign_work.get(WorkKind.SEQUENCE_STEP, enrolment.id)
    active = enrolment.state is EnrolmentState.ACTIVE
    count = max(len(sequence.definition.steps), max(runs, default=-1) + 1)
    steps: list[StepRecord] = []
    # A pending step is due its delay after the step before it was due (the timer says
    # when the next one fires).
    scheduled = enrolment.anchor_at
    for index in range(count):
        run = runs.get(index)
        if run is not None:
            steps.append(
                StepRecord(index, run.status, run.message_id, run.failure, run.due_at, run.ran_at)
            )
            continue
        shown: datetime | None = None
        if active and enrolment.next_step <= index < len(sequence.definition.steps):
            scheduled = sequences.step_due(sequence, index, scheduled, contact)
            shown = scheduled
            if index == enrolment.next_step and timer is not None:
                shown = timer.due_at  # a step whose run failed is retried later
        steps.append(StepRecord(index, "pending" if active else "cancelled", due_at=shown))
    return EnrolmentRecord(sequence, enrolment, contact, tuple(steps))


async def create_sequence(
    store: Store, *, name: str, definition: SequenceDefinition, now: datetime
) -> MessageSequence:
    sequence = MessageSequence(
        id=new_id(),
        name=name,
        version=1,
        definition=definition,
        created_at=now,
        updated_at=now,
    )

    async def job(tx: Tx) -> None:
        await sequences.check_definition(tx, definition)
        await tx.sequences.create(sequence)

    try:
        await store.write(job)
    except AlreadyExists as error:
        raise SequenceExists(str(error)) from None
    return sequence


async def sequences_by_name(store: Store) -> list[MessageSequence]:
    async with store.read() as tx:
        return await tx.sequences.by_name()


async def find_sequence(store: Store, sequence_id: str) -> MessageSequence:
    async with store.read() as tx:
        return await require_sequence(tx, sequence_id)


async def edit_sequence(
    store: Store, sequence_id: str, *, name: str, definition: SequenceDefinition, now: datetime
) -> MessageSequence:
    """A new version of the sequence (see :func:`engine.campaigns.sequences.edit`)."""

    async def job(tx: Tx) -> MessageSequence:
        await require_sequence(tx, sequence_id)
        await sequences.check_definition(tx, definition)
        return await sequences.edit(tx, sequence_id, name=name, definition=definition, now=now)

    try:
        return await store.write(job)
    except AlreadyExists as error:
        raise SequenceExists(str(error)) from None
    except NotFound:
        raise SequenceNotFound(sequence_id) from None


async def enrol_numbers(
    store: Store, sequence_id: str, parsed: ParsedNumbers, *, now: datetime
) -> Enrolled:
    """Enrol the contacts a CSV file's numbers name, a batch per store job; a number
    of no contact, like a line that did not parse, is an error of its line."""
    await find_sequence(store, sequence_id)
    errors = list(parsed.errors)
    enrolled = already = 0
    for start in range(0, len(parsed.rows), ENROL_BATCH):
        chunk = parsed.rows[start : start + ENROL_BATCH]

        async def job(
            tx: Tx, chunk: list[tuple[int, str]] = chunk
        ) -> tuple[int, int, list[RowError]]:
            sequence = await require_sequence(tx, sequence_id)
            done = known = 0
            unknown: list[RowError] = []
            for line, wa_id in chunk:
                contact = await tx.contacts.get(wa_id)
                if contact is None:
                    unknown.append(RowError(line, f"there is no contact {wa_id}; import it first"))
                    continue
                try:
                    await sequences.enrol(tx, sequence, contact, source="csv", now=now)
                    done += 1
                except AlreadyEnrolled:
                    known += 1
            return done, known, unknown

        done, known, unknown = await store.write(job)
        enrolled, already = enrolled + done, already + known
        errors += unknown
    errors.sort(key=lambda error: error.line)
    return Enrolled(enrolled, already, tuple(errors))


async def enrol_tag(store: Store, sequence_id: str, tag: str, *, now: datetime) -> Enrolled:
    """Enrol everyone with ``tag``, a batch per store job."""
    enrolled = already = 0
    after: int | None = None
    while True:

        async def job(tx: Tx, after: int | None = after) -> tuple[int, int, int | None]:
            sequence = await require_sequence(tx, sequence_id)
            page = await tx.contacts.list(tag=tag, after_id=after, limit=ENROL_BATCH)
            if not page and after is None:
                raise InvalidField("tag", f"no contact has the tag {tag!r}")
            done = known = 0
            for contact in page:
                try:
                    await sequences.enrol(tx, sequence, contact, source="tag", now=now)
                    done += 1
                except AlreadyEnrolled:
                    known += 1
            return done, known, page[-1].id if len(page) == ENROL_BATCH else None

        done, known, after = await store.write(job)
        enrolled, already = enrolled + done, already + known
        if after is None:
            return Enrolled(enrolled, already)


async def enrol_contact(
    store: Store, sequence_id: str, wa_id: str, *, now: datetime
) -> EnrolmentRecord:
    async def job(tx: Tx) -> EnrolmentRecord:
        sequence = await require_sequence(tx, sequence_id)
        contact = await tx.contacts.get(wa_id)
        if contact is None:
            raise InvalidField(
                "wa_id", f"there is no contact {wa_id}; create it first (POST /contacts)"
            )
        enrolment = await sequences.enrol(tx, sequence, contact, source="api", now=now)
        return await record(tx, sequence, enrolment, contact)

    return await store.write(job)


async def enrolment_record(store: Store, sequence_id: str, address: str) -> EnrolmentRecord:
    """The contact's latest enrolment in the sequence, active or not."""
    async with store.read() as tx:
        sequence = await require_sequence(tx, sequence_id)
        contact = await require_contact(tx, address)
        enrolment = await tx.sequences.latest_enrolment(sequence.id, contact.id)
        if enrolment is None:
            raise NotEnrolled(f"{address} was never in sequence {sequence.name}")
        return await record(tx, sequence, enrolment, contact)


async def newest_enrolments(
    store: Store, sequence_id: str, *, limit: int
) -> tuple[MessageSequence, list[EnrolmentRecord]]:
    """The sequence and its latest enrolments, each with every step's record."""
    async with store.read() as tx:
        sequence = await require_sequence(tx, sequence_id)
        found = []
        for enrolment in await tx.sequences.newest_enrolments(sequence_id, limit=limit):
            contact = await tx.contacts.get_by_id(enrolment.contact_id)
            if contact is not None:
                found.append(await record(tx, sequence, enrolment, contact))
        return sequence, found


async def unenrol_contact(
    store: Store, sequence_id: str, address: str, *, now: datetime
) -> EnrolmentRecord:
    async def job(tx: Tx) -> EnrolmentRecord:
        sequence = await require_sequence(tx, sequence_id)
        contact = await require_contact(tx, address)
        enrolment = await sequences.unenrol(tx, sequence, contact, now=now)
        return await record(tx, sequence, enrolment, contact)

    return await store.write(job)

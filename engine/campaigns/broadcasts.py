"""Broadcasts: one template to an audience, planned batch by batch into the outbox.

Planning reads the audience page by page (keyset pagination over contact ids) inside
the broadcast's due-work item, one store job per batch, so webhooks interleave with a
large broadcast and no list of the audience is ever held. The worker reads and decides
the next batch (:func:`prepare_batch`) while the one before commits, and the job writes
it (:func:`plan_batch`). Each batch asks the send rules for every recipient as it is planned
(:func:`engine.outbound.enqueue.plan_many`), with the opt-in as it is then: a contact who
opted out after the broadcast was created is not sent to (and the sender asks again
before each message goes). With ``opted_in_only`` (the default) a MARKETING template skips
opted-out contacts (``marketing_opt_out``); with it off they are sent to, and the
rules' ``quality_rating_risk`` notice is counted into a warning.

The quality guard watches a broadcast's first messages: when more than a share of them
fail with quality-related codes the broadcast pauses itself, its queued messages are
held back from the sender, and a person resumes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, Protocol

import phonenumbers

from engine.campaigns.refusals import BroadcastNotFound, WrongState
from engine.ids import new_id
from engine.models.campaign import (
    AudienceSpec,
    Broadcast,
    BroadcastState,
    GuardState,
)
from engine.models.content import TemplateContent
from engine.models.marketing_limits import QuietHours
from engine.models.message import Channel, Failure, TemplateRef
from engine.models.number import DAILY_LIMIT_PERIOD, BusinessNumber
from engine.models.template import TemplateCategory
from engine.outbound.enqueue import (
    BulkPlan,
    BulkRequest,
    TemplateProblem,
    plan_many,
    resolve,
)
from engine.outbound.marketing import limits_in_force
from engine.send_rules import (
    QUALITY_RATING_RISK,
    TEMPLATE_PAUSED,
    Options,
    Verdict,
    Window,
    decide,
    window_at,
)
from engine.store import Store, Tx
from engine.store.broadcasts import AudienceMember, AudiencePage, AudienceQuery
from engine.store.campaign_work import WorkItem, WorkKind
from engine.whatsapp.send_errors import title_of

log = logging.getLogger(__name__)

QUALITY_CODES = ("131050", "131026")
"""Refusals that speak of the broadcast's quality. Meta's per-user marketing limit
(131049) is not one: those messages are deferred and tried again hours later
(:mod:`engine.outbound.marketing_limit`), counted apart as ``deferred``."""
TEMPLATE_PAUSER = "meta"
"""Who paused a broadcast whose template Meta paused or disabled."""
"""Meta's failures that say recipients do not want, or cannot get, the messages."""

INVALID_NUMBERS = "invalid_numbers"
GUARD = "guard"
CANCELLED = Failure(
    code="cancelled", reason="The broadcast was cancelled before this message was sent."
)


@dataclass(frozen=True, slots=True)
class BroadcastSettings:
    batch_size: int = 1000
    """Recipients planned per store job."""
    guard_sample: int = 100
    """The guard watches this many first messages of a broadcast."""
    guard_max_failure_share: float = 0.2
    """More than this share of them failing with a quality code pauses the broadcast."""


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    count: int
    message: str


@dataclass(slots=True)
class Preview:
    """A broadcast counted before it is sent (nothing is written)."""

    total: int = 0
    opted_out: int = 0
    will_send: int = 0
    excluded_opted_out: int = 0
    quality_risk: int = 0
    needs_template: int = 0
    """Recipients whose last message to us is older than 24 hours (or who never wrote):
    only a template reaches them, which a broadcast always is."""
    without_valid_number: int = 0
    """Recipients without a phone number that phonenumbers accepts as valid."""

    @property
    def warnings(self) -> list[Warning]:
        warnings = []
        if self.quality_risk:
            warnings.append(
                Warning(
                    QUALITY_RATING_RISK,
                    self.quality_risk,
                    f"{self.quality_risk} recipient(s) opted out of marketing messages and "
                    "will be sent this MARKETING template because opted_in_only is false; "
                    "sending marketing to contacts who opted out may lower the phone "
                    "number's quality rating.",
                )
            )
        if self.without_valid_number:
            warnings.append(
                Warning(
                    INVALID_NUMBERS,
                    self.without_valid_number,
                    f"{self.without_valid_number} recipient(s) have no valid phone number; "
                    "WhatsApp may not deliver to them.",
                )
            )
        return warnings


def template_content(template: TemplateRef) -> TemplateContent:
    return TemplateContent(
        name=template.name, language=template.language, params=tuple(template.params)
    )


def stored_audience(broadcast: Broadcast) -> AudienceQuery:
    spec = broadcast.audience
    return AudienceQuery(
        tags=spec.tags,
        all_tags=spec.tags_match == "all",
        attributes=spec.attributes,
        broadcast_id=broadcast.id if spec.contacts else None,
    )


def audience_query(spec: AudienceSpec, contact_ids: tuple[int, ...] | None) -> AudienceQuery:
    """The audience of a broadcast not created yet: a preview (it reads when each
    contact last wrote to us)."""
    return AudienceQuery(
        tags=spec.tags,
        all_tags=spec.tags_match == "all",
        attributes=spec.attributes,
        contact_ids=contact_ids,
        last_inbound=True,
    )


def _valid_number(member: AudienceMember) -> bool:
    if member.wa_id is None:  # known by a user id, which Meta sends to as it is
        return member.user_id is not None
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + member.wa_id))
    except phonenumbers.NumberParseException:
        return False


async def preview(
    tx: Tx,
    content: TemplateContent,
    audience: AudienceQuery,
    *,
    opted_in_only: bool,
    now: datetime,
    check_numbers: bool = True,
    page_size: int = 1000,
) -> tuple[TemplateCategory, Preview]:
    """Count the audience as :func:`plan_batch` would plan it now, asking the send rules for
    each recipient; TemplateProblem when the template cannot be sent."""
    resolved = await resolve(tx, content)
    assert resolved.template is not None
    options = Options(opted_in_only=opted_in_only)
    counted = Preview()
    after = 0
    while True:
        page = await tx.broadcasts.audience_page(audience, after=after, limit=page_size)
        for member in page.members:
            window = window_at(member.last_inbound_at, now)
            decision = decide(
                Channel.BROADCAST,
                resolved.kind,
                opted_in=member.opted_in,
                window=window,
                options=options,
                to_user_id=member.wa_id is None,
            )
            counted.total += 1
            if not member.opted_in:
                counted.opted_out += 1
            if decision.sends:
                counted.will_send += 1
            if decision.verdict is Verdict.EXCLUDE:
                counted.excluded_opted_out += 1
            if decision.notice is not None and decision.notice.code == QUALITY_RATING_RISK:
                counted.quality_risk += 1
            if window is Window.CLOSED:
                counted.needs_template += 1
            if check_numbers and not _valid_number(member):
                counted.without_valid_number += 1
        if page.done:
            return resolved.template.category, counted
        after = page.cursor


async def create(
    tx: Tx,
    *,
    name: str,
    content: TemplateContent,
    category: TemplateCategory,
    audience: AudienceSpec,
    contact_ids: tuple[int, ...],
    opted_in_only: bool,
    send_at: datetime,
    counted: Preview,
    now: datetime,
    phone_number_id: str | None = None,
    quiet_hours: QuietHours | Literal["setting"] | None = "setting",
) -> Broadcast:
    """Store a broadcast and make its planning due at ``send_at``, from
    ``phone_number_id`` (None: the default number, kept as it is now); ``quiet_hours`` its
    own (None: it ignores them), or those of ``MARKETING_QUIET_HOURS``."""
    broadcast = Broadcast(
        phone_number_id=phone_number_id or await tx.numbers.default(),
        id=new_id(),
        name=name,
        template=TemplateRef(name=content.name, language=content.language, params=content.params),
        category=category,
        audience=audience,
        opted_in_only=opted_in_only,
        state=BroadcastState.SCHEDULED,
        send_at=send_at,
        total=counted.total,
        will_send=counted.will_send,
        excluded_opted_out=counted.excluded_opted_out,
        quality_risk=counted.quality_risk,
        planned_until=0,
        planned=0,
        planning_done=False,
        guard=GuardState.WATCHING,
        created_at=now,
        updated_at=now,
        quiet_hours=None if quiet_hours in (None, "setting") else str(quiet_hours),
        own_quiet_hours=quiet_hours != "setting",
    )
    await tx.broadcasts.create(broadcast, contact_ids)
    await tx.campaign_work.schedule(WorkKind.BROADCAST, broadcast.id, send_at)
    return broadcast


async def count_and_create(
    store: Store,
    *,
    name: str,
    content: TemplateContent,
    audience: AudienceSpec,
    opted_in_only: bool,
    send_at: datetime,
    now: datetime,
) -> tuple[Broadcast, Preview]:
    """Count a broadcast to tags and attributes (a read), then create it (a write). The
    API checks the request first and names what is wrong; this is for callers that
    already know the audience is sound (benchmarks, tests)."""
    async with store.read() as tx:
        category, counted = await preview(
            tx,
            content,
            audience_query(audience, None),
            opted_in_only=opted_in_only,
            now=now,
            check_numbers=False,
        )
    broadcast = await store.write(
        partial(
            create,
            name=name,
            content=content,
            category=category,
            audience=audience,
            contact_ids=(),
            opted_in_only=opted_in_only,
            send_at=send_at,
            counted=counted,
            now=now,
        )
    )
    return broadcast, counted


@dataclass(frozen=True, slots=True)
class Planned:
    queued: int = 0
    more: bool = False
    """The item is still held and more of the audience remains to plan."""
    paused: bool = False
    """Planning could not go on: the broadcast paused itself (hold its queued messages)."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A broadcast's next batch, read and decided outside the writer
    (:func:`prepare_batch`), so that it can be made while the batch before it commits.

    :func:`plan_batch` writes it only if the broadcast still stands where it was read
    (the same content, audience and toggle, planned up to ``after``); otherwise it plans
    afresh. Opt-ins read here may be a commit old; the sender asks the rule again just
    before each message goes, so a contact who opts out in between is not sent to."""

    broadcast: Broadcast
    after: int
    page: AudiencePage
    plan: BulkPlan | None
    problem: TemplateProblem | None = None


async def prepare_batch(
    tx: Tx,
    broadcast: Broadcast,
    *,
    after: int,
    settings: BroadcastSettings,
    now: datetime,
    limit: int | None = None,
) -> PreparedBatch:
    """Read the page of the audience after ``after`` (at most ``limit`` members, else
    a batch) and decide its rows."""
    page = await tx.broadcasts.audience_page(
        stored_audience(broadcast),
        after=after,
        limit=min(limit or settings.batch_size, settings.batch_size),
    )
    if not page.members:
        return PreparedBatch(broadcast, after, page, None)
    content = template_content(broadcast.template)
    # The quiet hours each row keeps, which the sender holds it for (a broadcast is
    # planned without reading each recipient's local time).
    limits = await limits_in_force(tx)
    options = Options(opted_in_only=broadcast.opted_in_only).with_quiet_hours(limits.quiet_hours)
    if broadcast.own_quiet_hours:
        own = QuietHours.parse(broadcast.quiet_hours) if broadcast.quiet_hours else None
        options = replace(options, quiet_hours=own, own_quiet_hours=True)
    try:
        resolved = await resolve(tx, content)
        plan = plan_many(
            BulkRequest(
                Channel.BROADCAST,
                content,
                page.members,
                options,
                phone_number_id=broadcast.phone_number_id,
            ),
            resolved,
            now=now,
        )
    except TemplateProblem as problem:
        return PreparedBatch(broadcast, after, page, None, problem)
    return PreparedBatch(broadcast, after, page, plan)


def _still_stands(prepared: PreparedBatch | None, broadcast: Broadcast) -> bool:
    if prepared is None:
        return False
    then = prepared.broadcast
    return (
        prepared.after == broadcast.planned_until
        and then.template == broadcast.template
        and then.audience == broadcast.audience
        and then.opted_in_only == broadcast.opted_in_only
    )


async def plan_batch(
    tx: Tx,
    *,
    item: WorkItem,
    owner: str,
    settings: BroadcastSettings,
    now: datetime,
    lease_until: datetime,
    last_turn: bool,
    prepared: PreparedBatch | None = None,
) -> Planned:
    """The job of a broadcast's due-work item: plan its next batch (``prepared`` when it
    still stands, else read and decided here). On ``last_turn`` an unfinished broadcast
    lets go of its item (due again now), so other work gets a turn."""
    if await tx.campaign_work.held(owner, item.id, lease_until=lease_until) is None:
        return Planned()  # another worker took the item over
    broadcast = await tx.broadcasts.get(item.subject)
    if broadcast is None or broadcast.state not in (
        BroadcastState.SCHEDULED,
        BroadcastState.SENDING,
    ):
        await tx.campaign_work.cancel(WorkKind.BROADCAST, item.subject)
        return Planned()
    if broadcast.state is BroadcastState.SCHEDULED:
        await tx.broadcasts.set_state(broadcast.id, BroadcastState.SENDING, now=now)
    if await _template_paused(tx, broadcast):
        await _pause(tx, broadcast, by=TEMPLATE_PAUSER, reason=TEMPLATE_PAUSED, now=now)
        return Planned(paused=True)
    health = await number_health(tx, broadcast, now=now)
    if health.pause_reason is not None:
        await _pause(tx, broadcast, by=NUMBER_HEALTH, reason=health.pause_reason, now=now)
        return Planned(paused=True)
    if health.room is not None and health.room <= 0:
        # The number has reached its daily limit: the rest waits for the rolling 24 hours.
        await tx.campaign_work.schedule(
            WorkKind.BROADCAST, broadcast.id, health.next_room_at or now + timedelta(minutes=1)
        )
        return Planned()
    if (
        prepared is None
        or not _still_stands(prepared, broadcast)
        or (health.room is not None and len(prepared.page.members) > health.room)
    ):
        prepared = await prepare_batch(
            tx,
            broadcast,
            after=broadcast.planned_until,
            settings=settings,
            now=now,
            limit=health.room,
        )
    if prepared.problem is not None:
        await _pause(
            tx, broadcast, by="planner", reason=f"Planning stopped: {prepared.problem}", now=now
        )
        return Planned(paused=True)
    page, queued = prepared.page, 0
    if prepared.plan is not None and prepared.plan.batch is not None:
        await tx.outbox.add_batch(prepared.plan.batch)
        enqueued = prepared.plan.enqueued
        await tx.broadcasts.add_recipients(
            broadcast.id,
            [
                (m.contact_id, mid)
                for m, mid in zip(page.members, enqueued.message_ids, strict=True)
            ],
        )
        queued = enqueued.queued
    await tx.broadcasts.advance(
        broadcast.id,
        planned_until=page.cursor,
        planned=len(page.members),
        done=page.done,
        now=now,
    )
    if page.done:
        await tx.campaign_work.cancel(WorkKind.BROADCAST, broadcast.id)
        return Planned(queued)
    if last_turn:
        await tx.campaign_work.schedule(WorkKind.BROADCAST, broadcast.id, now)
        return Planned(queued)
    return Planned(queued, more=True)


NUMBER_HEALTH = "number_health"
"""Who paused a broadcast whose business number turned RED or was flagged."""


def unhealthy_reason(number: BusinessNumber) -> str:
    why = "was flagged" if number.flagged else f"has quality {number.quality_rating}"
    return (
        f"Business number {number.display_phone_number} ({number.phone_number_id}) {why}: "
        "marketing from it is paused to protect it; resume once its quality recovers."
    )


@dataclass(frozen=True, slots=True)
class NumberHealth:
    pause_reason: str | None = None
    room: int | None = None
    """Customers the number may still start conversations with now (None: no limit)."""
    next_room_at: datetime | None = None


async def _number_of(tx: Tx, broadcast: Broadcast) -> BusinessNumber | None:
    if broadcast.phone_number_id is None:
        return None
    return await tx.numbers.get(broadcast.phone_number_id)


async def number_pause_reason(tx: Tx, broadcast: Broadcast) -> str | None:
    """Why a MARKETING broadcast must pause for its number's health (None: it need not)."""
    if broadcast.category is not TemplateCategory.MARKETING:
        return None
    number = await _number_of(tx, broadcast)
    return unhealthy_reason(number) if number is not None and number.unhealthy else None


async def number_health(tx: Tx, broadcast: Broadcast, *, now: datetime) -> NumberHealth:
    """What the broadcast's number allows now: a MARKETING broadcast on a number that
    is RED or flagged pauses; planning stays within the number's daily limit of unique
    customers in a rolling 24 hours (its messaging limit tier)."""
    number = await _number_of(tx, broadcast)
    if number is None:
        return NumberHealth()
    if number.unhealthy and broadcast.category is TemplateCategory.MARKETING:
        return NumberHealth(pause_reason=unhealthy_reason(number))
    if number.daily_limit is None:
        return NumberHealth()
    since = now - DAILY_LIMIT_PERIOD
    reached = await tx.numbers.customers_reached(number.phone_number_id, since=since)
    room = max(0, number.daily_limit - reached)
    oldest = (
        await tx.numbers.oldest_reach(number.phone_number_id, since=since) if not room else None
    )
    # A slot frees 24 hours after the oldest send in the period.
    next_at = (oldest + DAILY_LIMIT_PERIOD) if oldest is not None else now + timedelta(minutes=1)
    return NumberHealth(room=room, next_room_at=max(next_at, now + timedelta(seconds=1)))


async def _template_paused(tx: Tx, broadcast: Broadcast) -> bool:
    """Whether Meta does not send the broadcast's template now (paused, disabled, ...)."""
    template = await tx.templates.get(broadcast.template.name, broadcast.template.language)
    return template is not None and not template.approved


async def _require(tx: Tx, broadcast_id: str) -> Broadcast:
    broadcast = await tx.broadcasts.get(broadcast_id)
    if broadcast is None:
        raise BroadcastNotFound(broadcast_id)
    return broadcast


async def _pause(tx: Tx, broadcast: Broadcast, *, by: str, reason: str, now: datetime) -> None:
    """Nothing more is planned; the queued messages are then held (:func:`hold_queued`)."""
    await tx.broadcasts.set_state(
        broadcast.id,
        BroadcastState.PAUSED,
        now=now,
        guard=GuardState.TRIPPED if by == GUARD else None,
        paused_by=by,
        reason=reason,
    )
    await tx.campaign_work.cancel(WorkKind.BROADCAST, broadcast.id)


async def cancel(tx: Tx, broadcast_id: str, *, now: datetime) -> Broadcast:
    """Stop a broadcast: nothing more is planned, and its unsent messages are then
    skipped (:func:`skip_queued`). Messages already with the sender finish their send."""
    broadcast = await _require(tx, broadcast_id)
    if broadcast.state.is_final:
        raise WrongState(f"broadcast {broadcast_id} is {broadcast.state}; it cannot be cancelled")
    await tx.campaign_work.cancel(WorkKind.BROADCAST, broadcast_id)
    await tx.broadcasts.set_state(broadcast_id, BroadcastState.CANCELLED, now=now)
    return await _require(tx, broadcast_id)


async def pause(tx: Tx, broadcast_id: str, *, by: str, reason: str, now: datetime) -> Broadcast:
    broadcast = await _require(tx, broadcast_id)
    if broadcast.state not in (BroadcastState.SCHEDULED, BroadcastState.SENDING):
        raise WrongState(f"broadcast {broadcast_id} is {broadcast.state}; it cannot be paused")
    await _pause(tx, broadcast, by=by, reason=reason, now=now)
    return await _require(tx, broadcast_id)


async def resume(tx: Tx, broadcast_id: str, *, now: datetime) -> Broadcast:
    """A person resumes a paused broadcast (its held messages are then released,
    :func:`release_held`); a guard that paused it watches no more."""
    broadcast = await _require(tx, broadcast_id)
    if broadcast.state is not BroadcastState.PAUSED:
        raise WrongState(f"broadcast {broadcast_id} is {broadcast.state}, not paused")
    guard = GuardState.OVERRIDDEN if broadcast.guard is GuardState.TRIPPED else None
    waiting = not broadcast.planned and now < broadcast.send_at
    state = BroadcastState.SCHEDULED if waiting else BroadcastState.SENDING
    await tx.broadcasts.set_state(broadcast_id, state, now=now, guard=guard)
    if not broadcast.planning_done:
        await tx.campaign_work.schedule(
            WorkKind.BROADCAST, broadcast_id, max(now, broadcast.send_at)
        )
    return await _require(tx, broadcast_id)


QUEUED_CHUNK = 2000
"""Queued messages held, released or skipped per store job."""


class Chunk(Protocol):
    """One job of a change made a chunk at a time: the last id it reached, or None."""

    def __call__(self, tx: Tx, *, after: str) -> Awaitable[str | None]: ...


async def _in_chunks(store: Store, change: Chunk) -> None:
    after: str | None = ""
    while after is not None:
        after = await store.write(partial(change, after=after))


async def hold_queued(store: Store, broadcast_id: str) -> None:
    """Hold a paused broadcast's queued messages back from the sender, a chunk per job.
    The sender may still take a few while this runs; they are sent."""

    async def chunk(tx: Tx, *, after: str) -> str | None:
        broadcast = await tx.broadcasts.get(broadcast_id)
        if broadcast is None or broadcast.state is not BroadcastState.PAUSED:
            return None  # resumed (or cancelled) meanwhile
        return await tx.broadcasts.hold_queued(broadcast_id, after=after, limit=QUEUED_CHUNK)

    await _in_chunks(store, chunk)


async def release_held(store: Store, broadcast_id: str, now: datetime) -> None:
    async def chunk(tx: Tx, *, after: str) -> str | None:
        return await tx.broadcasts.release_held(broadcast_id, now, after=after, limit=QUEUED_CHUNK)

    await _in_chunks(store, chunk)


async def skip_queued(store: Store, broadcast_id: str, now: datetime) -> None:
    async def chunk(tx: Tx, *, after: str) -> str | None:
        return await tx.broadcasts.skip_queued(
            broadcast_id, CANCELLED, now, after=after, limit=QUEUED_CHUNK
        )

    await _in_chunks(store, chunk)


def guard_reason(
    broadcast_id: str, failures: dict[str, int], sample: int, settings: BroadcastSettings
) -> str:
    failed = sum(failures.values())
    codes = ", ".join(
        f"{code} {title_of(int(code))} ×{count}" for code, count in sorted(failures.items())
    )
    return (
        f"The quality guard paused this broadcast: {failed} of its first {sample} messages "
        f"failed with quality-related errors ({codes}), more than the "
        f"{settings.guard_max_failure_share:.0%} allowed. Sending more may lower the phone "
        "number's quality rating. Check the template and the audience, then resume it "
        f"(POST /api/v1/broadcasts/{broadcast_id}/resume)."
    )


@dataclass(frozen=True, slots=True)
class Watch:
    """What the guard and the completion check found for one sending broadcast."""

    broadcast_id: str
    trip: str | None = None
    """The reason to pause it."""
    completed: bool = False
    by: str = GUARD
    """Who pauses it: the quality guard, or the health of its business number."""
    template_paused: bool = False
    """Meta paused or disabled its template: it pauses (``template_paused``)."""


async def watch(tx: Tx, broadcast_id: str, settings: BroadcastSettings) -> Watch | None:
    """Read-only: whether a sending broadcast trips the guard or has completed."""
    broadcast = await tx.broadcasts.get(broadcast_id)
    if broadcast is None or broadcast.state is not BroadcastState.SENDING:
        return None
    if await _template_paused(tx, broadcast):
        return Watch(broadcast_id, template_paused=True)
    unhealthy = await number_pause_reason(tx, broadcast)
    if unhealthy is not None:
        return Watch(broadcast_id, trip=unhealthy, by=NUMBER_HEALTH)
    if broadcast.guard is GuardState.WATCHING:
        sample = await tx.broadcasts.guard_sample(
            broadcast_id, settings.guard_sample, QUALITY_CODES
        )
        # Until the sample is full, judge against its full size: a few early failures
        # out of a few sends say little. A broadcast smaller than the sample is judged
        # whole once it is all planned.
        size = settings.guard_sample
        if broadcast.planning_done and sample.messages < size:
            size = sample.messages
        if size and sum(sample.failures.values()) > settings.guard_max_failure_share * size:
            return Watch(
                broadcast_id, trip=guard_reason(broadcast_id, sample.failures, size, settings)
            )
    if broadcast.planning_done and not await tx.broadcasts.has_pending(broadcast_id):
        return Watch(broadcast_id, completed=True)
    return None


async def apply_watch(tx: Tx, found: Watch, *, now: datetime) -> bool:
    """Pause or complete the broadcast as found; True when it paused it (then hold its
    queued messages)."""
    broadcast = await tx.broadcasts.get(found.broadcast_id)
    if broadcast is None or broadcast.state is not BroadcastState.SENDING:
        return False  # changed since it was looked at
    if found.template_paused:
        log.warning("broadcast %s paused: Meta paused or disabled its template", broadcast.id)
        await _pause(tx, broadcast, by=TEMPLATE_PAUSER, reason=TEMPLATE_PAUSED, now=now)
        return True
    if found.trip is not None:
        log.warning("broadcast %s paused (%s): %s", broadcast.id, found.by, found.trip)
        await _pause(tx, broadcast, by=found.by, reason=found.trip, now=now)
        return True
    if found.completed and not await tx.broadcasts.has_pending(broadcast.id):
        await tx.broadcasts.set_state(broadcast.id, BroadcastState.COMPLETED, now=now)
    return False

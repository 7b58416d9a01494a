"""The broadcast use cases the REST API offers: count an audience before sending,
create a broadcast, read it and its report, and cancel, pause or resume it. A refusal
is a :class:`engine.campaigns.refusals.CampaignRefusal` naming the field that is wrong,
and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from engine.campaigns import broadcasts
from engine.campaigns.broadcasts import Preview
from engine.campaigns.refusals import BroadcastNotFound, InvalidField, InvalidFields
from engine.models.campaign import AttributeCondition, AudienceSpec, Broadcast
from engine.models.content import TemplateContent
from engine.models.marketing_limits import QuietHours
from engine.models.template import TemplateCategory
from engine.outbound.enqueue import TemplateProblem
from engine.store import AlreadyExists, Store, Tx
from engine.store.broadcasts import RecipientRow
from engine.store.messages import BillingLine

SEND_AT_GRACE = timedelta(minutes=1)
"""A ``send_at`` this little in the past (clocks differ) means now."""
REPORT_PAGE = 1000
AUDIENCE_FIELDS = ("contacts", "tags", "attributes")

PAUSED_THROUGH_API = "Paused through the API; resume it to go on."


@dataclass(frozen=True, slots=True)
class BroadcastRequest:
    """A template and the audience to send it to, as a caller asked."""

    template: TemplateContent
    contacts: Sequence[str] = ()
    """wa_ids, in the order given (a refusal names the index of an unknown one)."""
    tags: Sequence[str] = ()
    tags_match: Literal["any", "all"] = "any"
    attributes: Sequence[AttributeCondition] = ()
    opted_in_only: bool = True
    phone_number_id: str | None = None
    """The business number to send from; None: the default (the first registered)."""
    quiet_hours: QuietHours | Literal["setting"] | None = "setting"
    """Its own quiet hours (None: it ignores them), else MARKETING_QUIET_HOURS."""


@dataclass(frozen=True, slots=True)
class Counted:
    """A broadcast request checked and its audience counted."""

    audience: AudienceSpec
    contact_ids: tuple[int, ...]
    category: TemplateCategory
    preview: Preview


def _utc(moment: datetime) -> str:
    """As the answers write times: ``2026-03-03T09:00:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _audience(asked: BroadcastRequest) -> AudienceSpec:
    if not (asked.contacts or asked.tags or asked.attributes):
        message = "give contacts, tags or attributes: the audience is empty"
        raise InvalidFields(message, tuple((field, message) for field in AUDIENCE_FIELDS))
    return AudienceSpec(
        contacts=len(set(asked.contacts)),
        tags=tuple(sorted(set(asked.tags))),
        tags_match=asked.tags_match,
        attributes=tuple(asked.attributes),
    )


async def _count(tx: Tx, asked: BroadcastRequest, *, now: datetime, check_numbers: bool) -> Counted:
    spec = _audience(asked)
    if asked.phone_number_id is not None and await tx.numbers.get(asked.phone_number_id) is None:
        raise InvalidField(
            "phone_number_id", f"business number {asked.phone_number_id!r} is not registered"
        )
    contact_ids: tuple[int, ...] = ()
    if asked.contacts:
        known = await tx.broadcasts.contact_ids(sorted(set(asked.contacts)))
        for index, wa_id in enumerate(asked.contacts):
            if wa_id not in known:
                raise InvalidField(
                    f"contacts.{index}",
                    f"there is no contact {wa_id}; create or import it first",
                )
        contact_ids = tuple(sorted(set(known.values())))
    try:
        category, counted = await broadcasts.preview(
            tx,
            asked.template,
            broadcasts.audience_query(spec, contact_ids if asked.contacts else None),
            opted_in_only=asked.opted_in_only,
            now=now,
            check_numbers=check_numbers,
        )
    except TemplateProblem as problem:
        raise InvalidField(problem.field, problem.message) from None
    if not counted.total:
        given = [
            field
            for field, value in zip(
                AUDIENCE_FIELDS, (asked.contacts, asked.tags, asked.attributes), strict=True
            )
            if value
        ]
        message = "no contact matches the audience"
        raise InvalidFields(
            f"{', '.join(given)}: {message}", tuple((field, message) for field in given)
        )
    return Counted(spec, contact_ids, category, counted)


async def preview_broadcast(store: Store, asked: BroadcastRequest, *, now: datetime) -> Counted:
    """Count what the broadcast would send now (a read; nothing is written)."""
    async with store.read() as tx:
        return await _count(tx, asked, now=now, check_numbers=True)


async def _made_with(store: Store, idempotency_key: str) -> Broadcast | None:
    async with store.read() as tx:
        made = await tx.broadcasts.by_request(idempotency_key)
        return None if made is None else await tx.broadcasts.get(made)


async def create_broadcast(
    store: Store,
    asked: BroadcastRequest,
    *,
    name: str,
    send_at: datetime | None,
    now: datetime,
    idempotency_key: str | None = None,
) -> Broadcast:
    """Count the audience (a read), then store the broadcast, due at ``send_at`` (now
    when None or a moment ago). A request with the ``idempotency_key`` of one that made
    a broadcast already (a form submitted twice) answers that broadcast and makes none."""
    if idempotency_key is not None and (made := await _made_with(store, idempotency_key)):
        return made
    if send_at is not None and send_at < now - SEND_AT_GRACE:
        raise InvalidField("send_at", f"{_utc(send_at)} is in the past (now is {_utc(now)})")
    due = max(send_at or now, now)
    async with store.read() as tx:
        counted = await _count(tx, asked, now=now, check_numbers=False)

    async def job(tx: Tx) -> Broadcast:
        if idempotency_key is not None:
            made = await tx.broadcasts.by_request(idempotency_key)
            found = None if made is None else await tx.broadcasts.get(made)
            if found is not None:
                return found
        broadcast = await broadcasts.create(
            tx,
            name=name,
            content=asked.template,
            category=counted.category,
            audience=counted.audience,
            contact_ids=counted.contact_ids,
            opted_in_only=asked.opted_in_only,
            phone_number_id=asked.phone_number_id,
            quiet_hours=asked.quiet_hours,
            send_at=due,
            counted=counted.preview,
            now=now,
        )
        if idempotency_key is not None:
            # The unique key is the guard: of two submits at once, one commits.
            await tx.broadcasts.remember_request(idempotency_key, broadcast.id)
        return broadcast

    try:
        return await store.write(job)
    except AlreadyExists:
        assert idempotency_key is not None  # nothing else in the job is unique
        made = await _made_with(store, idempotency_key)
        assert made is not None
        return made


async def newest_broadcasts(store: Store, *, before: str | None, limit: int) -> list[Broadcast]:
    async with store.read() as tx:
        return await tx.broadcasts.newest(before=before, limit=limit)


async def find_broadcast(store: Store, broadcast_id: str) -> tuple[Broadcast, dict[str, int]]:
    """The broadcast and how many of its messages are in each status."""
    async with store.read() as tx:
        broadcast = await tx.broadcasts.get(broadcast_id)
        counts = await tx.broadcasts.counts(broadcast_id)
    if broadcast is None:
        raise BroadcastNotFound(broadcast_id)
    return broadcast, counts


async def broadcast_billing(store: Store, broadcast_id: str) -> list[BillingLine]:
    """What Meta priced of the broadcast's messages, by pricing category."""
    async with store.read() as tx:
        return await tx.messages.billing(broadcast_id=broadcast_id)


async def report_page(
    store: Store, broadcast_id: str, *, after: int, limit: int
) -> list[RecipientRow]:
    """The recipients after contact id ``after``, ``limit`` of them."""
    async with store.read() as tx:
        broadcast = await tx.broadcasts.get(broadcast_id)
        rows = await tx.broadcasts.report(broadcast_id, after_contact=after, limit=limit)
    if broadcast is None:
        raise BroadcastNotFound(broadcast_id)
    return rows


async def report_pages(
    store: Store, broadcast_id: str, *, after: int
) -> AsyncIterator[list[RecipientRow]]:
    """The whole report after ``after``, a page per read, so a large one never sits in
    memory (the broadcast is known to exist: ask :func:`report_page` first)."""
    while True:
        async with store.read() as tx:
            rows = await tx.broadcasts.report(broadcast_id, after_contact=after, limit=REPORT_PAGE)
        yield rows
        if len(rows) < REPORT_PAGE:
            return
        after = rows[-1].contact_id


async def _change(
    store: Store,
    broadcast_id: str,
    change: Callable[..., Awaitable[Broadcast]],
    then: Callable[[], Awaitable[None]],
    *,
    now: datetime,
) -> tuple[Broadcast, dict[str, int]]:
    """Change a broadcast's state in one job, then ``then`` its queued messages, a chunk
    per job (a broadcast may have a hundred thousand)."""
    await store.write(partial(change, broadcast_id=broadcast_id, now=now))
    await then()
    return await find_broadcast(store, broadcast_id)


async def cancel_broadcast(
    store: Store, broadcast_id: str, *, now: datetime
) -> tuple[Broadcast, dict[str, int]]:
    """Stop it; its unsent messages are skipped."""
    return await _change(
        store,
        broadcast_id,
        broadcasts.cancel,
        partial(broadcasts.skip_queued, store, broadcast_id, now),
        now=now,
    )


async def pause_broadcast(
    store: Store, broadcast_id: str, *, now: datetime
) -> tuple[Broadcast, dict[str, int]]:
    """Plan no more; its queued messages are held back from the sender."""
    return await _change(
        store,
        broadcast_id,
        partial(broadcasts.pause, by="api", reason=PAUSED_THROUGH_API),
        partial(broadcasts.hold_queued, store, broadcast_id),
        now=now,
    )


async def resume_broadcast(
    store: Store, broadcast_id: str, *, now: datetime
) -> tuple[Broadcast, dict[str, int]]:
    """Go on planning; its held messages go back to the sender."""
    return await _change(
        store,
        broadcast_id,
        broadcasts.resume,
        partial(broadcasts.release_held, store, broadcast_id, now),
        now=now,
    )

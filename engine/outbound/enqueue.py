"""The one entrance for outbound messages of every channel.

:func:`enqueue` resolves what is sent (a template's category comes from the
catalogue), reads the contact's 24-hour window, asks :mod:`engine.send_rules`, and
records the outcome as a message row in the same transaction as the caller's other
changes (:mod:`engine.outbound.verdicts`):

- the rules send → a ``queued`` row, which the sender picks up;
- they fail (sequence, API) → a ``failed`` row with the rule's code and reason;
- they exclude (broadcast) → a ``skipped`` row with the code and reason;
- they hold (a MARKETING template inside the contact's quiet hours) → a ``queued`` row
  due when they end, which shows ``held_until``;
- they need confirmation (compose box) → no row; the caller asks the agent;
- they refuse (free form outside the window) → no row; :class:`Refused` tells the
  caller.

A MARKETING template is also checked against the marketing limits in force
(:mod:`engine.outbound.marketing`): the frequency cap (what was sent to the contact in its
period) and their quiet hours. Every row keeps what the rules were asked (the content's
kind and the sender's options, with the quiet hours it keeps), and the sender asks them
again with the contact's opt-in and window of that moment just before sending: a contact
who opts out while their message waits is recorded as if they had opted out before it
was queued.

A queued row gets its place in the outbox here too: replies to customers (bot,
compose) go ahead of API messages, which go ahead of bulk sends (broadcasts,
sequences). Nothing sends around this function.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from engine.identity import is_user_id
from engine.ids import new_id, new_ids
from engine.models.contact import Contact
from engine.models.content import (
    ButtonsContent,
    ListContent,
    MediaContent,
    OutboundContent,
    TemplateContent,
    TextContent,
)
from engine.models.message import (
    Channel,
    Direction,
    Message,
    MessageStatus,
    TemplateRef,
)
from engine.models.template import Template
from engine.outbound.marketing import NOT_LIMITED, limit_inputs, limits_in_force
from engine.outbound.verdicts import recorded_as
from engine.send_rules import ContentKind, Decision, Options, Verdict, Window, decide, window_at
from engine.store import Tx
from engine.store.messages import PolicyInputs
from engine.store.outbox import BatchMessage, MessageBatch, Schedule
from engine.whatsapp.send import send_json, send_json_for


class TemplateProblem(ValueError):
    """The template cannot be sent as asked; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Refused(Exception):
    """The send rules refuse the message before anything is recorded (free form outside
    the 24-hour window): ``decision`` carries the code and the reason."""

    def __init__(self, decision: Decision) -> None:
        assert decision.code is not None
        super().__init__(decision.reason or decision.code)
        self.decision = decision
        self.code = decision.code
        self.reason = decision.reason or decision.code


PRIORITY = {
    Channel.BOT: 0,
    Channel.COMPOSE: 0,
    Channel.API: 1,
    Channel.SEQUENCE: 2,
    Channel.BROADCAST: 2,
}
"""Lower goes first: a customer waiting for an answer beats a campaign."""


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    contact: Contact
    channel: Channel
    content: OutboundContent
    options: Options = field(default_factory=Options)
    idempotency_key: str | None = None
    """API: a second request with the same key gets the first one's message."""
    callback_url: str | None = None
    """API: where each status change of the message is posted (signed)."""
    phone_number_id: str | None = None
    """The business number to send from; None is the configured one."""


@dataclass(frozen=True, slots=True)
class Enqueued:
    decision: Decision
    message: Message | None
    """The recorded row; None only when the rules need the agent's confirmation."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a content is, as the catalogue and the opt-in rule see it."""

    kind: ContentKind
    text: str | None
    template: Template | None
    template_ref: TemplateRef | None


async def resolve(tx: Tx, content: OutboundContent) -> Resolved:
    """Look a template up in the catalogue and check its parameters (TemplateProblem)."""
    match content:
        case TemplateContent():
            template = await tx.templates.get(content.name, content.language)
            if template is None:
                raise TemplateProblem(
                    "template",
                    f"template {content.name} ({content.language}) is not in the catalogue",
                )
            if len(content.params) != template.param_count:
                raise TemplateProblem(
                    "template.params",
                    f"template {content.name} takes {template.param_count} parameter(s), "
                    f"{len(content.params)} given",
                )
            return Resolved(
                ContentKind.of_template(template.category),
                template.render(content.params),
                template,
                TemplateRef(name=content.name, language=content.language, params=content.params),
            )
        case TextContent() | ButtonsContent() | ListContent():
            return Resolved(ContentKind.FREE_FORM, content.body, None, None)
        case MediaContent():
            return Resolved(ContentKind.FREE_FORM, content.caption, None, None)


ANSWERING = frozenset({Channel.BOT, Channel.COMPOSE})
"""Channels that answer a customer: from the number the customer last wrote to."""


async def sending_number(
    tx: Tx, contact_id: int, channel: Channel, chosen: str | None
) -> str | None:
    """The business number a message goes out from: the one chosen, else (the bot, an
    agent) the one the customer last wrote to, else the default (the first registered);
    None only when no number is registered (the sender then uses ``WA_PHONE_NUMBER_ID``)."""
    if chosen is not None:
        return chosen
    if channel in ANSWERING:
        written_to = await tx.numbers.last_written_to(contact_id)
        if written_to is not None:
            return written_to
    return await tx.numbers.default()


async def last_inbound(tx: Tx, contact_id: int, phone_number_id: str | None) -> datetime | None:
    """When the contact last wrote to ``phone_number_id``: the window a free-form message
    from that number is judged by. A contact whose messages came before numbers were
    kept apart has only the conversation's time, which then counts for any number."""
    if phone_number_id is not None:
        at = await tx.numbers.last_inbound(contact_id, phone_number_id)
        if at is not None or await tx.numbers.last_written_to(contact_id) is not None:
            return at
    return (await tx.conversations.get(contact_id)).last_inbound_at


async def enqueue(tx: Tx, request: OutboundRequest, *, now: datetime) -> Enqueued:
    """Record ``request`` as decided by the send rules; :class:`Refused` (nothing
    recorded) when they refuse it, TemplateProblem when the template cannot be sent."""
    content = request.content
    resolved = await resolve(tx, content)
    template, template_ref, text = resolved.template, resolved.template_ref, resolved.text
    number = await sending_number(tx, request.contact.id, request.channel, request.phone_number_id)
    options = request.options
    limited = NOT_LIMITED
    if resolved.kind is ContentKind.MARKETING:
        limits = await limits_in_force(tx)
        options = options.with_quiet_hours(limits.quiet_hours)
        limited = await limit_inputs(
            tx, request.contact, resolved.kind, limits, options.quiet_hours, now=now
        )
    decision = decide(
        request.channel,
        resolved.kind,
        opted_in=request.contact.marketing_opt_in,
        window=window_at(await last_inbound(tx, request.contact.id, number), now),
        options=options,
        over_cap=limited.over_cap,
        quiet_until=limited.quiet_until,
        template_status=template.status if template else None,
        to_user_id=is_user_id(request.contact.address),
    )
    if decision.refused:
        raise Refused(decision)
    if decision.verdict is Verdict.NEEDS_CONFIRMATION:
        return Enqueued(decision, None)
    status, failure = recorded_as(decision)
    message = Message(
        id=new_id(),
        direction=Direction.OUTBOUND,
        channel=request.channel,
        contact_id=request.contact.id,
        contact=request.contact.address,
        kind=content.kind,
        text=text,
        template=template_ref,
        payload=content.model_dump(mode="json"),
        status=status,
        failure=failure,
        held_until=decision.hold_until,
        created_at=now,
        updated_at=now,
    )
    queued = status is MessageStatus.QUEUED
    policy = PolicyInputs(resolved.kind, options)
    if not (queued or request.idempotency_key or request.callback_url):
        await tx.messages.insert(message, policy=policy)
        return Enqueued(decision, message)
    await tx.outbox.add(
        message,
        Schedule(
            priority=PRIORITY[request.channel],
            recipient=request.contact.address,
            # Held for quiet hours: due when they end, not claimed (and not polled) before.
            due_at=decision.hold_until or now,
            policy=policy,
            phone_number_id=number,
            idempotency_key=request.idempotency_key,
            callback_url=request.callback_url,
            # The exact request, made once here: sending is then only posting it.
            request_body=send_json(
                request.contact.address, content, template=template, reference=message.id
            )
            if queued
            else None,
        ),
    )
    return Enqueued(decision, message)


# Campaigns: one content to many recipients in one go (broadcast batches).
class Recipient(Protocol):
    """A contact as bulk planning reads it (e.g. a page of a broadcast's audience)."""

    @property
    def contact_id(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def opted_in(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class BulkRequest:
    channel: Channel
    content: OutboundContent
    recipients: Sequence[Recipient]
    options: Options = field(default_factory=Options)
    phone_number_id: str | None = None


@dataclass(frozen=True, slots=True)
class BulkEnqueued:
    message_ids: list[str]
    """One per recipient, in the order given."""
    verdicts: Counter[Verdict]
    notices: Counter[str]
    """Codes of the notices the rules attached to messages it let through."""

    @property
    def queued(self) -> int:
        """Rows queued: to be sent, or waiting for their template to be approved again."""
        return (
            self.verdicts[Verdict.SEND]
            + self.verdicts[Verdict.SEND_WITH_NOTICE]
            + self.verdicts[Verdict.WAIT]
        )


@dataclass(frozen=True, slots=True)
class BulkPlan:
    """The rows :func:`enqueue_many` writes, made without the store (:func:`plan_many`)."""

    batch: MessageBatch | None
    """None when there are no recipients."""
    enqueued: BulkEnqueued


async def enqueue_many(tx: Tx, request: BulkRequest, *, now: datetime) -> BulkEnqueued:
    """:func:`enqueue` for many recipients of one content: the rules decide for each
    recipient, and every outcome is a message row, as with :func:`enqueue`; the
    template is looked up and the request body built once for them all."""
    plan = plan_many(request, await resolve(tx, request.content), now=now)
    if plan.batch is not None:
        await tx.outbox.add_batch(plan.batch)
    return plan.enqueued


def plan_many(request: BulkRequest, resolved: Resolved, *, now: datetime) -> BulkPlan:
    """The rows of :func:`enqueue_many`, decided by the send rules, for ``resolved`` content
    (:func:`resolve`); nothing is written, so a caller can make the next batch's rows
    while the last one commits."""
    body_for = send_json_for(request.content, template=resolved.template)
    channel, kind, options = request.channel, resolved.kind, request.options
    # Bulk sends are templates, which the window does not stop, so the recipients'
    # windows are not read: the rules are asked as if closed (free form would not go).
    # They are pure and, for one content and one set of options, then depend only on
    # the recipient's opt-in: ask them once for each value rather than once per recipient.
    status = resolved.template.status if resolved.template else None
    decisions = {
        opted_in: decide(
            channel,
            kind,
            opted_in=opted_in,
            window=Window.CLOSED,
            options=options,
            template_status=status,
        )
        for opted_in in (True, False)
    }
    recorded = {opted_in: recorded_as(decision) for opted_in, decision in decisions.items()}
    opted_in_count = sum(1 for recipient in request.recipients if recipient.opted_in)
    counts = {True: opted_in_count, False: len(request.recipients) - opted_in_count}
    verdicts: Counter[Verdict] = Counter()
    notices: Counter[str] = Counter()
    for opted_in, decision in decisions.items():
        if counts[opted_in]:
            if decision.verdict is Verdict.NEEDS_CONFIRMATION or decision.refused:
                raise ValueError(f"the {channel} channel cannot send {kind} in bulk")
            verdicts[decision.verdict] += counts[opted_in]
            if decision.sends and decision.notice is not None:
                notices[decision.notice.code] += counts[opted_in]
    messages: list[BatchMessage] = []
    for recipient, message_id in zip(
        request.recipients, new_ids(len(request.recipients)), strict=True
    ):
        address = recipient.address
        status, failure = recorded[recipient.opted_in]
        body = body_for(address, message_id) if failure is None else None
        messages.append(
            BatchMessage(message_id, recipient.contact_id, address, status, failure, body)
        )
    batch = None
    if messages:
        batch = MessageBatch(
            channel=request.channel,
            kind=request.content.kind,
            text=resolved.text,
            template=resolved.template_ref,
            payload=request.content.model_dump(mode="json"),
            policy=PolicyInputs(kind, options),
            priority=PRIORITY[request.channel],
            created_at=now,
            phone_number_id=request.phone_number_id,
            messages=messages,
        )
    return BulkPlan(batch, BulkEnqueued([m.message_id for m in messages], verdicts, notices))

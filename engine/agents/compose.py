"""The compose path: what an agent writes goes through the send rules and the outbox.

The rules for the ``compose`` channel (how an agent answers a conversation) come from
:mod:`engine.send_rules`, asked through :func:`engine.outbound.enqueue.enqueue`:

- every answer about a contact who opted out of marketing carries the
  ``marketing_opt_out`` notice;
- a MARKETING template to such a contact needs the agent's confirmation: without it
  :class:`ConfirmationRequired` and nothing is recorded; with it the message is
  queued and the confirmation (who, when) is kept with it;
- free text needs the 24-hour customer-service window open (Meta's rule): the rules
  refuse it otherwise, and :class:`FreeTextOutsideWindow` points to templates.

Writing into a conversation the bot owns, or one waiting in the queue, takes it over
(so the bot falls silent); one another agent owns is :class:`ConversationOwned`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.agents.ownership import take_over
from engine.agents.refusals import (
    ConfirmationRequired,
    FreeTextOutsideWindow,
    InvalidTemplate,
)
from engine.models.agent import Agent, ComposeRecord, Confirmation
from engine.models.contact import Contact
from engine.models.content import MediaContent, TemplateContent, TextContent
from engine.models.message import Channel, Message
from engine.models.template import TemplateCategory
from engine.outbound.enqueue import OutboundRequest, Refused, TemplateProblem, enqueue
from engine.outbound.marketing import limit_inputs, limits_in_force
from engine.send_rules import TEMPLATE_PAUSED, ContentKind, Notice, Options, Verdict, Window, decide
from engine.store import Tx


def notices_for(contact: Contact) -> tuple[Notice, ...]:
    """What the compose box shows about ``contact`` whatever is written: the notice the
    send rules give any compose message to them (``marketing_opt_out`` when they opted
    out).

    Asking the rules rather than reading ``marketing_opt_in`` here keeps the rule in
    one place.
    """
    decision = decide(
        Channel.COMPOSE,
        ContentKind.FREE_FORM,
        opted_in=contact.marketing_opt_in,
        window=Window.OPEN,
    )
    return () if decision.notice is None else (decision.notice,)


async def compose_notices(tx: Tx, contact: Contact, *, now: datetime) -> tuple[Notice, ...]:
    """:func:`notices_for`, and the ``frequency_cap`` notice when a MARKETING template now
    would be one more than ``MARKETING_FREQUENCY_CAP`` allows (the compose box sends it
    all the same: the rules give it a notice, which the agent sees before writing)."""
    notices = notices_for(contact)
    limits = await limits_in_force(tx)
    if limits.frequency_cap is None:
        return notices
    limited = await limit_inputs(tx, contact, ContentKind.MARKETING, limits, None, now=now)
    decision = decide(
        Channel.COMPOSE,
        ContentKind.MARKETING,
        opted_in=True,  # the opt-out notice is given above
        window=Window.OPEN,
        over_cap=limited.over_cap,
    )
    if decision.notice is not None and decision.notice not in notices:
        notices += (decision.notice,)
    return notices


def confirmation_reason(contact: Contact, category: TemplateCategory) -> str | None:
    """Why the send rules will ask the agent to confirm a template of ``category`` before
    it goes to ``contact``; None when they will not ask (the console warns up front)."""
    decision = decide(
        Channel.COMPOSE,
        ContentKind.of_template(category),
        opted_in=contact.marketing_opt_in,
        window=Window.OPEN,  # templates do not need the window
    )
    if decision.verdict is not Verdict.NEEDS_CONFIRMATION:
        return None
    return decision.reason or decision.code


@dataclass(frozen=True, slots=True)
class ComposeRequest:
    agent: Agent
    content: TextContent | TemplateContent | MediaContent
    confirm_opted_out: bool = False
    idempotency_key: str | None = None
    """One key per intent to send: a repeat of it finds the first message."""


@dataclass(frozen=True, slots=True)
class Composed:
    message: Message
    record: ComposeRecord
    notices: tuple[Notice, ...]
    took_over: bool


async def composed_before(tx: Tx, contact: Contact, request: ComposeRequest) -> Composed | None:
    """What the agent's earlier try of this same intent (same idempotency key) recorded."""
    if request.idempotency_key is None:
        return None
    record = await tx.desk.compose_record_by_key(request.agent.email, request.idempotency_key)
    if record is None:
        return None
    message = await tx.messages.get(record.message_id)
    assert message is not None, "a compose record keeps its message"
    return Composed(message, record, notices_for(contact), took_over=False)


async def compose(tx: Tx, contact: Contact, request: ComposeRequest, *, now: datetime) -> Composed:
    """Record the agent's message as ``queued`` (the sender picks it up), or raise a
    :class:`~engine.agents.refusals.DeskError`. Run it as one store job: a refusal
    rolls back the takeover too. A repeat of an idempotency key records nothing and
    answers what the first try recorded."""
    earlier = await composed_before(tx, contact, request)
    if earlier is not None:
        return earlier
    notices = notices_for(contact)
    conversation, took_over = await take_over(tx, contact, request.agent, now=now)
    outbound = OutboundRequest(contact, Channel.COMPOSE, request.content)
    confirmation: Confirmation | None = None
    try:
        outcome = await enqueue(tx, outbound, now=now)
        if outcome.decision.verdict is Verdict.NEEDS_CONFIRMATION:
            if not request.confirm_opted_out:
                raise ConfirmationRequired(outcome.decision, notices=notices)
            confirmed = OutboundRequest(
                contact, Channel.COMPOSE, request.content, Options(confirmed_opted_out=True)
            )
            outcome = await enqueue(tx, confirmed, now=now)
            confirmation = Confirmation(by=request.agent.email, at=now)
    except TemplateProblem as problem:
        raise InvalidTemplate(problem.field, problem.message, notices=notices) from None
    except Refused as refused:
        if refused.code == TEMPLATE_PAUSED:  # Meta paused or disabled the template
            raise InvalidTemplate("template", refused.reason, notices=notices) from None
        raise FreeTextOutsideWindow(
            contact.address,
            conversation.window_open_until,
            decision=refused.decision,
            notices=notices,
        ) from None
    assert outcome.message is not None, "a confirmed compose message is recorded"
    record = ComposeRecord(
        message_id=outcome.message.id,
        agent=request.agent.email,
        confirmed_opted_out=confirmation,
        idempotency_key=request.idempotency_key,
    )
    await tx.desk.record_compose(record)
    answered = outcome.decision.notice
    if answered is not None and answered not in notices:
        notices = (*notices, answered)
    return Composed(outcome.message, record, notices, took_over)

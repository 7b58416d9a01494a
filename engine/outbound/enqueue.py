"""The one entrance for outbound messages of every channel.

:func:`enqueue` resolves what is sent (a template's category comes from the
catalogue), asks :mod:`engine.policy`, and records the outcome as a message row in
the same transaction as the caller's other changes:

- the policy sends → a ``queued`` row, which the sender picks up;
- it fails (sequence, API) → a ``failed`` row with the policy's code and reason;
- it excludes (broadcast) → a ``skipped`` row with the code and reason;
- it needs confirmation (compose box) → no row; the caller asks the agent.

A queued row gets its place in the outbox here too: replies to customers (bot,
compose) go ahead of API messages, which go ahead of bulk sends (broadcasts,
sequences). Nothing sends around this function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.ids import new_id
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
    Failure,
    Message,
    MessageStatus,
    TemplateRef,
)
from engine.models.template import Template
from engine.policy import ContentKind, Decision, Options, Verdict, decide
from engine.store import Tx
from engine.store.outbox import Schedule
from engine.whatsapp.send import send_json


class TemplateProblem(ValueError):
    """The template cannot be sent as asked; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


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
    """The recorded row; None only when the policy needs the agent's confirmation."""


async def enqueue(tx: Tx, request: OutboundRequest, *, now: datetime) -> Enqueued:
    content = request.content
    template_ref: TemplateRef | None = None
    template: Template | None = None
    kind = ContentKind.FREE_FORM
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
            kind = ContentKind.of_template(template.category)
            text: str | None = template.render(content.params)
            template_ref = TemplateRef(
                name=content.name, language=content.language, params=content.params
            )
        case TextContent() | ButtonsContent() | ListContent():
            text = content.body
        case MediaContent():
            text = content.caption

    decision = decide(
        request.channel,
        kind,
        opted_in=request.contact.marketing_opt_in,
        options=request.options,
    )
    if decision.verdict is Verdict.NEEDS_CONFIRMATION:
        return Enqueued(decision, None)
    status = {
        Verdict.FAIL: MessageStatus.FAILED,
        Verdict.EXCLUDE: MessageStatus.SKIPPED,
    }.get(decision.verdict, MessageStatus.QUEUED)
    failure = (
        Failure(code=decision.code, reason=decision.reason or decision.code)
        if decision.code and not decision.sends
        else None
    )
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
        created_at=now,
        updated_at=now,
    )
    queued = status is MessageStatus.QUEUED
    if not (queued or request.idempotency_key or request.callback_url):
        await tx.messages.insert(message)
        return Enqueued(decision, message)
    await tx.outbox.add(
        message,
        Schedule(
            priority=PRIORITY[request.channel],
            recipient=request.contact.address,
            due_at=now,
            phone_number_id=request.phone_number_id,
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

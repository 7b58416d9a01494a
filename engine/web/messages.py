"""REST: the API & integrations channel and the messages report.

``POST /api/v1/messages`` sends a template or free text to one number through
:func:`engine.outbound.api.send_api_message`; this module only reads the request and
writes the answer. Problems the caller can fix (an unknown template, a wrong parameter
count, a number that does not parse, free text outside the 24-hour window) are a 422
and change nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, HttpUrl

from engine.models.content import TemplateContent, TextContent
from engine.models.message import Message, MessageStatus
from engine.outbound.api import ApiMessage, NotANewNumber, send_api_message
from engine.outbound.enqueue import Refused, TemplateProblem
from engine.send_rules import AUTHENTICATION_TO_USER_ID, TEMPLATE_PAUSED
from engine.store.messages import MessageFilter
from engine.store.outbox import OutboxState
from engine.web.billing import billing_json, pricing_json
from engine.web.error_answers import ApiError, not_found
from engine.web.keys import CALLBACK_SECRET, CLOCK, SETTINGS, STORE
from engine.web.message_report import ReportQuery, report_json, stream_messages_csv
from engine.web.validation import Body, ContactAddress, parse_body, parse_query
from engine.web.wire import TemplateChoice, iso

routes = web.RouteTableDef()


class MessageCreate(Body):
    to: ContactAddress
    template: TemplateChoice | None = None
    text: str | None = Field(default=None, min_length=1, max_length=4096)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    callback_url: HttpUrl | None = None
    phone_number_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the business number to send from; default: the first registered",
    )


def accepted_json(message: Message) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": message.id,
        "status": message.status.value,
        "to": message.contact,
        "channel": message.channel.value if message.channel else None,
    }
    if message.failure is not None:
        answer["failure"] = message.failure.model_dump()
    if message.held_until is not None:
        answer["held_until"] = iso(message.held_until)
    return answer


def message_json(message: Message, state: OutboxState | None) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction.value,
        "channel": message.channel.value if message.channel else None,
        "to": message.contact,
        "kind": message.kind,
        "text": message.text,
        "template": message.template.model_dump(mode="json") if message.template else None,
        "status": message.status.value,
        "failure": message.failure.model_dump() if message.failure else None,
        "wamid": message.wamid,
        "attempts": state.attempts if state else 0,
        "ambiguous_attempts": state.ambiguous_attempts if state else 0,
        "next_attempt_at": iso(state.next_attempt_at)
        if state
        and state.next_attempt_at
        and message.status in (MessageStatus.QUEUED, MessageStatus.DEFERRED)
        else None,
        "held_until": iso(message.held_until) if message.held_until else None,
        "callback_url": state.callback_url if state else None,
        "history": [
            {
                "status": change.status.value,
                "at": iso(change.at),
                "failure": change.failure.model_dump() if change.failure else None,
                "details": change.details,
            }
            for change in message.history
        ],
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
    }


@routes.post("/api/v1/messages")
async def send_message(request: web.Request) -> web.Response:
    body = await parse_body(request, MessageCreate)
    if (body.template is None) == (body.text is None):
        problem = "give exactly one of template and text"
        raise ApiError(
            422,
            "invalid_request",
            f"template, text: {problem}",
            fields=[
                {"field": "template", "message": problem},
                {"field": "text", "message": problem},
            ],
        )
    content: TemplateContent | TextContent
    if body.template is not None:
        content = TemplateContent(
            name=body.template.name,
            language=body.template.language,
            params=tuple(body.template.params),
        )
    else:
        assert body.text is not None
        content = TextContent(body=body.text)
    settings, clock = request.app[SETTINGS], request.app[CLOCK]
    order = ApiMessage(
        to=body.to,
        content=content,
        idempotency_key=body.idempotency_key,
        callback_url=str(body.callback_url) if body.callback_url else None,
        phone_number_id=body.phone_number_id,
    )
    try:
        sent = await request.app[STORE].write(
            lambda tx: send_api_message(
                tx, order, default_opt_in=settings.default_marketing_opt_in, now=clock.now()
            )
        )
    except NotANewNumber as unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"to: {unknown}",
            fields=[{"field": "to", "message": str(unknown)}],
        ) from None
    except TemplateProblem as problem:
        raise ApiError(
            422,
            "invalid_request",
            f"{problem.field}: {problem.message}",
            fields=[{"field": problem.field, "message": problem.message}],
        ) from None
    except Refused as refused:
        # Meta paused or disabled the template, or refuses it to a user id
        if refused.code in (TEMPLATE_PAUSED, AUTHENTICATION_TO_USER_ID):
            raise ApiError(
                422,
                refused.code,
                f"template: {refused.reason}",
                fields=[{"field": "template", "message": refused.reason}],
            ) from None
        # free text outside the 24-hour window
        raise ApiError(
            422,
            refused.code,
            f"text: the 24-hour customer-service window with {body.to} is closed "
            "(they have not written in the last 24 hours); send a template instead",
            fields=[{"field": "text", "message": "the 24-hour window is closed"}],
        ) from None
    message, replayed = sent.message, sent.replayed
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return web.json_response(accepted_json(message), status=202, headers=headers)


@routes.get("/api/v1/messages/{id}")
async def get_message(request: web.Request) -> web.Response:
    message_id = request.match_info["id"]
    async with request.app[STORE].read() as tx:
        message = await tx.messages.get(message_id)
        state = await tx.outbox.state(message_id)
        deliveries = await tx.callbacks.for_message(message_id)
        number = await tx.numbers.of_message(message_id)
        pricing = await tx.messages.pricing(message_id)
    if message is None:
        raise not_found(f"message {message_id}")
    document = message_json(message, state)
    document["phone_number_id"] = number
    # Meta's per-user marketing limit, a paused template, and what Meta charges.
    document["deferrals"] = state.deferrals if state else 0
    document["waits_for_template"] = state.waits_for_template if state else None
    document["pricing"] = pricing_json(pricing)
    document["callbacks"] = [
        {"status": d.status.value, "state": d.state, "attempts": d.attempts, "error": d.last_error}
        for d in deliveries
    ]
    return web.json_response(document)


@routes.get("/api/v1/reports/messages")
async def report_messages(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, ReportQuery)
    where = MessageFilter(
        channel=query.channel,
        status=query.status,
        since=query.since,
        until=query.until,
        after_id=query.after,
        limit=query.limit,
    )
    store = request.app[STORE]
    if query.format == "csv":
        return await stream_messages_csv(request, where)
    async with store.read() as tx:
        rows = await tx.outbox.report(where)
        counts = await tx.outbox.report_counts(where)
        billing = await tx.messages.billing(where)
    return web.json_response(
        {
            "rows": [report_json(row) for row in rows],
            "next_after": rows[-1].id if len(rows) == query.limit else None,
            "counts": counts,
            "billing": billing_json(billing),
        }
    )


@routes.get("/api/v1/callbacks/secret")
async def callback_secret(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "secret": request.app[CALLBACK_SECRET],
            "header": "X-Optinflow-Signature",
            "scheme": "sha256=<hex HMAC-SHA256 of the raw body>",
        }
    )

"""The API & integrations channel: send a template or free text to one number.

The contact is the one ``to`` names exactly (its ``wa_id`` or user id as Meta gave
it); when there is none it is created, and then ``to`` must be a phone number the
number library knows (:class:`NotANewNumber` otherwise), with the opt-in of
:func:`opt_in_of_new_contact` and consent source ``api``. The message goes through the
one outbound entrance, so the send rules of the ``api`` channel apply: a MARKETING
template to an opted-out contact is recorded as ``failed`` with ``marketing_opt_out``
and never sent. What the caller can fix raises instead, and nothing is recorded (run
it as one store job): an unknown template or a wrong parameter count
(:class:`~engine.outbound.enqueue.TemplateProblem`), free text outside the 24-hour
window (:class:`~engine.outbound.enqueue.Refused`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.identity import is_user_id
from engine.models.contact import ConsentSource, opt_in_of_new_contact
from engine.models.content import TemplateContent, TextContent
from engine.models.message import Channel, Message
from engine.outbound.enqueue import OutboundRequest, enqueue
from engine.phone import is_valid_wa_id
from engine.store import Tx
from engine.store.contacts import Consent, NewContact


class NotANewNumber(ValueError):
    """``to`` names no contact and is not a phone number a new contact can be made of."""

    def __init__(self, to: str) -> None:
        super().__init__(f"{to!r} names no contact and is not a valid phone number")
        self.to = to


@dataclass(frozen=True, slots=True)
class ApiMessage:
    to: str
    """A contact's ``wa_id`` or user id, or a normalised phone number."""
    content: TemplateContent | TextContent
    idempotency_key: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class ApiSent:
    message: Message
    replayed: bool
    """True when the idempotency key named a message sent before: that one is returned."""


async def send_api_message(
    tx: Tx, request: ApiMessage, *, default_opt_in: bool, now: datetime
) -> ApiSent:
    """Record the API's message (``queued``, or ``failed`` by the opt-in rule)."""
    if request.idempotency_key is not None:
        existing = await tx.outbox.find_by_idempotency_key(request.idempotency_key)
        if existing is not None:
            message = await tx.messages.get(existing)
            assert message is not None
            return ApiSent(message, replayed=True)
    by_user_id = is_user_id(request.to)
    if (
        await tx.contacts.get(request.to) is None
        and not by_user_id
        and not is_valid_wa_id(request.to)
    ):
        raise NotANewNumber(request.to)
    contact, _ = await tx.contacts.get_or_create(
        NewContact(
            wa_id=None if by_user_id else request.to,
            user_id=request.to if by_user_id else None,
            marketing_opt_in=opt_in_of_new_contact(None, default=default_opt_in),
        ),
        Consent(ConsentSource.API, actor="api", note="created by POST /api/v1/messages"),
    )
    enqueued = await enqueue(
        tx,
        OutboundRequest(
            contact,
            Channel.API,
            request.content,
            idempotency_key=request.idempotency_key,
            callback_url=request.callback_url,
        ),
        now=now,
    )
    assert enqueued.message is not None, "the api channel never asks for confirmation"
    return ApiSent(enqueued.message, replayed=False)

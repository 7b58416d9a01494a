"""The engine parts' refusals as REST answers: each part raises its own typed errors
(naming the field where one is wrong); this is the one place that gives them an HTTP
status and the error JSON."""

from __future__ import annotations

from aiohttp import web

from engine.agents.refusals import (
    ConfirmationRequired,
    ConversationOwned,
    DeskError,
    FreeTextOutsideWindow,
    InvalidTemplate,
    UnknownAgent,
    UnknownFlow,
)
from engine.agents.view import notice_json
from engine.agents.work_refusals import InvalidField, NotAllowed, NotFound
from engine.campaigns.refusals import (
    AlreadyEnrolled,
    BroadcastNotFound,
    CampaignRefusal,
    InvalidFields,
    NotEnrolled,
    SequenceExists,
    SequenceNotFound,
    WrongState,
)
from engine.contacts.refusals import ContactExists, ContactNotFound, ContactRefusal, InvalidAddress
from engine.web.error_answers import ApiError, Handler, not_found

_DESK_STATUS: dict[type[DeskError], int] = {
    ConversationOwned: 409,
    ConfirmationRequired: 409,
    FreeTextOutsideWindow: 422,
    InvalidTemplate: 422,
    NotAllowed: 403,
    NotFound: 404,
}


def invalid(field: str, message: str, **extra: object) -> ApiError:
    """A 422 naming one field."""
    return ApiError(
        422,
        "invalid_request",
        f"{field}: {message}",
        fields=[{"field": field, "message": message}],
        **extra,
    )


def contact_refusal(error: ContactRefusal) -> ApiError:
    if isinstance(error, InvalidAddress):
        return invalid(error.field, error.field_message)
    if isinstance(error, ContactNotFound):
        return not_found(f"contact {error.address}")
    if isinstance(error, ContactExists):
        return ApiError(409, "contact_exists", error.message)
    return ApiError(409, "contact_refused", error.message)


_CAMPAIGN_ANSWER: dict[type[CampaignRefusal], tuple[int, str]] = {
    WrongState: (409, "wrong_state"),
    AlreadyEnrolled: (409, "already_enrolled"),
    NotEnrolled: (404, "not_enrolled"),
    SequenceExists: (409, "sequence_exists"),
}


def campaign_refusal(error: CampaignRefusal) -> ApiError:
    if isinstance(error, InvalidFields):
        fields = [{"field": field, "message": message} for field, message in error.fields]
        return ApiError(422, "invalid_request", error.message, fields=fields)
    if isinstance(error, BroadcastNotFound):
        return not_found(f"broadcast {error.broadcast_id}")
    if isinstance(error, SequenceNotFound):
        return not_found(f"sequence {error.sequence_id}")
    status, code = _CAMPAIGN_ANSWER.get(type(error), (409, "campaign_refused"))
    return ApiError(status, code, error.message)


def desk_refusal(error: DeskError) -> ApiError:
    """The REST answer to a refusal; it carries the contact's notices like any answer."""
    notices = [notice_json(n) for n in error.notices]
    if isinstance(error, UnknownAgent):
        return invalid("agent", error.message)
    if isinstance(error, UnknownFlow | InvalidField):
        return invalid(error.field, error.field_message)
    if isinstance(error, InvalidTemplate):
        return invalid(error.field, error.field_message, notices=notices)
    return ApiError(
        _DESK_STATUS.get(type(error), 409),
        error.code,
        error.message,
        **error.details,
        notices=notices,
    )


Refusal = ContactRefusal | DeskError | CampaignRefusal


def api_error(error: Refusal) -> ApiError:
    if isinstance(error, ContactRefusal):
        return contact_refusal(error)
    if isinstance(error, CampaignRefusal):
        return campaign_refusal(error)
    return desk_refusal(error)


@web.middleware
async def refusal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a refusal a route let through as the REST API answers it."""
    try:
        return await handler(request)
    except (ContactRefusal, DeskError, CampaignRefusal) as error:
        raise api_error(error) from None

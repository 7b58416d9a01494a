"""The JSON error shape of the REST API and the middleware that produces it.

Every error answers ``{"error": {"code": "<snake_case>", "message": "<sentence>", ...}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from engine.store.failures import StoreBusy, StoreUnavailable

log = logging.getLogger(__name__)

_BODY_HEADERS = frozenset({"content-type", "content-length"})
"""Headers of an HTTP exception's own text body, replaced by the JSON error's."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error the client can act on, answered as JSON with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message, **self.extra}}
        return web.json_response(body, status=self.status)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} was not found")


def field_errors(error: ValidationError, *, prefix: tuple[str | int, ...] = ()) -> ApiError:
    """A 422 naming every field that is wrong, e.g. ``wa_id: not a valid phone number``."""
    fields = []
    for issue in error.errors(include_url=False):
        location = ".".join(str(part) for part in (*prefix, *issue["loc"])) or "body"
        message = "unknown field" if issue["type"] == "extra_forbidden" else issue["msg"]
        message = message.removeprefix("Value error, ")
        fields.append({"field": location, "message": message})
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, "invalid_request", summary, fields=fields)


def store_overloaded(error: StoreBusy | StoreUnavailable) -> web.Response:
    """503 with Retry-After: the request did nothing and may be sent again (Meta retries
    webhooks it was not answered 200)."""
    if isinstance(error, StoreBusy):
        code, message = "store_busy", "the database is busy; try again in a moment"
    else:
        code, message = "store_unavailable", "the database cannot be reached; try again later"
    response = ApiError(503, code, message).response()
    response.headers["Retry-After"] = "1"
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except ValidationError as error:
        return field_errors(error).response()
    except (StoreBusy, StoreUnavailable) as error:
        log.warning("%s %s answered 503: %s", request.method, request.path, error)
        return store_overloaded(error)
    except web.HTTPException as error:
        if error.status < 400 or not request.path.startswith("/api/"):
            raise
        code = error.reason.lower().replace(" ", "_")
        response = ApiError(error.status, code, error.text or error.reason).response()
        # What the exception says beside its text stays: a 405's Allow lists the methods.
        for name, value in error.headers.items():
            if name.lower() not in _BODY_HEADERS:
                response.headers[name] = value
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return ApiError(500, "internal_error", "the server failed; see its log").response()

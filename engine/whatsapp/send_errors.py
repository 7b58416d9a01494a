"""Cloud API send errors: Meta's error envelope read into typed, retry-aware errors.

Meta answers a refused send with the Graph API envelope::

    {"error": {"message": "(#131026) Message Undeliverable.", "type": "OAuthException",
               "code": 131026, "error_data": {"messaging_product": "whatsapp",
               "details": "..."}, "fbtrace_id": "..."}}

:func:`classify` turns an HTTP answer into one of three kinds, the way courier does:

- :class:`Throttled`: a rate limit (HTTP 429, or codes 4, 80007, 130429, 131048,
  131056, 133016); retry later, slower.
- :class:`Unavailable`: Meta could not answer (5xx, a timeout, a broken connection,
  an answer we cannot read, or a code Meta documents as temporary); retry later.
- :class:`Rejected`: the message itself is refused (131026 undeliverable, 131051
  unsupported type, 132xxx template errors, 100 invalid parameter, ...); retrying
  cannot help. :class:`CloudApiWindowClosed` (131047, Meta's refusal of free form
  outside the 24-hour window) is a rejection the caller can act on: send a template
  instead of free text.

>>> answer = b'{"error": {"code": 131047, "message": "(#131047) Re-engagement message"}}'
>>> error = classify(400, answer)
>>> isinstance(error, CloudApiWindowClosed), error.retryable, error.failure().code
(True, False, '131047')
>>> classify(400, b'{"error": {"code": 130429, "message": "(#130429) Rate limit hit"}}').retryable
True
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from engine.models.message import Failure

THROTTLING_CODES = frozenset({4, 80007, 130429, 131048, 131056, 133016})
"""Meta's rate-limit codes: the message is fine, we sent too fast."""

TEMPORARY_CODES = frozenset({1, 2, 131000, 131016, 133004})
"""Codes Meta documents as temporary (unknown error, service unavailable, ...)."""

WINDOW_CLOSED = 131047
PAIR_RATE_LIMIT = 131056
MARKETING_LIMIT = 131049
"""Meta's per-user marketing limit: "This message was not delivered to maintain healthy
ecosystem engagement". Not the message's fault: it may go some hours later."""
MARKETING_STOPPED = 131050
"""Meta: "This recipient has chosen to stop receiving marketing messages from you"."""
AUTHENTICATION_TO_USER_ID = 131062
"""An authentication template addressed to a user id: Meta sends those to phone
numbers only. The send rules refuse it first; this is for when Meta says it anyway."""

TITLES: dict[int, str] = {
    0: "AuthException",
    1: "API Unknown",
    2: "API Service",
    3: "API Method",
    4: "API Too Many Calls",
    10: "Permission Denied",
    100: "Invalid parameter",
    190: "Access token has expired",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    130472: "User's number is part of an experiment",
    131000: "Something went wrong",
    131005: "Access denied",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131021: "Recipient cannot be sender",
    131026: "Message Undeliverable",
    131031: "Business Account locked",
    131042: "Business eligibility payment issue",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "This message was not delivered to maintain healthy ecosystem engagement",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving "
    "marketing messages on WhatsApp from your business",
    131051: "Unsupported message type",
    131052: "Media download error",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131057: "Account in maintenance mode",
    131062: "Authentication templates cannot be sent to a user id",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132005: "Translated text too long",
    132007: "Template Format Character Policy Violated",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is Paused",
    132016: "Template is Disabled",
    133004: "Server Temporarily Unavailable",
    133010: "Phone number Not Registered",
    133016: "Account register deregister rate limit exceeded",
}

_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


def title_of(code: int) -> str:
    return TITLES.get(code, f"Cloud API error {code}")


class SendError(Exception):
    """A send that did not give us a wamid.

    ``code`` is Meta's numeric code when the answer carried one, else one of ours
    (``timeout``, ``connection_failed``, ``http_503``, ``unreadable_response``).
    ``ambiguous`` is True when Meta may have accepted the message although we hold no
    wamid (a timeout or a dropped connection after the request was written).
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        code: int | str,
        title: str,
        details: str | None = None,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{code}: {title}" + (f" ({details})" if details else ""))
        self.code = code
        self.title = title
        self.details = details
        self.http_status = http_status
        self.retry_after = retry_after
        self.ambiguous = ambiguous

    @property
    def reason(self) -> str:
        if self.details and self.details.rstrip(".") != self.title.rstrip("."):
            return f"{self.title}: {self.details}"
        return self.title

    def failure(self) -> Failure:
        return Failure(code=str(self.code), reason=self.reason)

    def as_details(self) -> dict[str, Any]:
        """What the status history keeps about this error."""
        details: dict[str, Any] = {"code": self.code, "title": self.title}
        if self.details:
            details["details"] = self.details
        if self.http_status is not None:
            details["http_status"] = self.http_status
        return details


class Throttled(SendError):
    retryable = True


class Unavailable(SendError):
    retryable = True


class Rejected(SendError):
    retryable = False


def stops_marketing(code: int | str | None) -> bool:
    """Whether Meta's error ``code`` (as Meta sends it, or as a stored failure code)
    says the contact stopped marketing messages: an opt-out (:data:`MARKETING_STOPPED`).

    >>> stops_marketing(131050), stops_marketing("131050"), stops_marketing(131049)
    (True, True, False)
    """
    return code is not None and str(code) == str(MARKETING_STOPPED)


class MarketingNotOnboarded(Rejected):
    """The Marketing Messages API refused the send because the business has not been
    onboarded to it (its terms not accepted): the message can go through ``/messages``."""


_NOT_ONBOARDED_WORDS = ("onboard", "terms of service")
NOT_ONBOARDED_CODES = frozenset({10, 200})
"""Permission errors (10 Permission Denied, 200 API Permission), which the Marketing
Messages API answers for a business that has not accepted its terms."""


def not_onboarded(error: SendError) -> bool:
    """Whether a refusal of the Marketing Messages API says the business is not onboarded:
    a permission error, or one whose words say so.

    >>> not_onboarded(Rejected(10, "Permission Denied"))
    True
    >>> not_onboarded(Rejected(100, "Invalid parameter", "Business is not onboarded"))
    True
    >>> not_onboarded(Rejected(131026, "Message Undeliverable"))
    False
    """
    if isinstance(error, MarketingNotOnboarded):
        return True
    if not isinstance(error, Rejected):
        return False
    words = f"{error.title} {error.details or ''}".lower()
    return error.code in NOT_ONBOARDED_CODES or any(w in words for w in _NOT_ONBOARDED_WORDS)


def limits_marketing(code: int | str | None) -> bool:
    """Whether Meta's error ``code`` is its per-user marketing limit (:data:`MARKETING_LIMIT`).

    >>> limits_marketing(131049), limits_marketing("131049"), limits_marketing(131050)
    (True, True, False)
    """
    return code is not None and str(code) == str(MARKETING_LIMIT)


class AuthenticationToUserId(Rejected):
    """131062: an authentication template was addressed to a user id."""

    @property
    def reason(self) -> str:
        return (
            "authentication template to a user id: WhatsApp sends AUTHENTICATION "
            "templates to phone numbers only (Meta 131062); the contact has no phone number"
        )


class CloudApiWindowClosed(Rejected):
    """131047: free-form messages need a customer message in the last 24 hours."""

    @property
    def reason(self) -> str:
        return (
            "window closed: the 24-hour customer-service window is closed "
            "(Meta 131047 Re-engagement message); send a template instead"
        )


def _envelope(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else None


def classify(http_status: int, body: bytes, *, retry_after: float | None = None) -> SendError:
    """The error an unsuccessful answer (anything but a 2xx with a wamid) stands for."""
    error = _envelope(body)
    raw_code = error.get("code") if error else None
    code = raw_code if isinstance(raw_code, int) else None
    if error is None or code is None:
        if http_status == 429:
            return Throttled(
                "http_429", "Too Many Requests", http_status=429, retry_after=retry_after
            )
        if http_status >= 500:
            return Unavailable(
                f"http_{http_status}",
                f"HTTP {http_status} from the Cloud API",
                http_status=http_status,
            )
        return Rejected(
            f"http_{http_status}",
            f"HTTP {http_status} with an answer that is not a Cloud API error",
            http_status=http_status,
        )
    assert error is not None
    message = error.get("message")
    title = _CODE_PREFIX.sub("", message).rstrip(".") if isinstance(message, str) else ""
    title = title or title_of(code)
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    details = details if isinstance(details, str) and details else None
    kwargs: dict[str, Any] = {"http_status": http_status, "retry_after": retry_after}
    if http_status == 429 or code in THROTTLING_CODES:
        return Throttled(code, title, details, **kwargs)
    if http_status >= 500 or code in TEMPORARY_CODES:
        return Unavailable(code, title, details, **kwargs)
    if code == WINDOW_CLOSED:
        return CloudApiWindowClosed(code, title, details, **kwargs)
    if code == AUTHENTICATION_TO_USER_ID:
        return AuthenticationToUserId(code, title, details, **kwargs)
    return Rejected(code, title, details, **kwargs)


_BY_CODE: dict[int, type[SendError]] = {
    WINDOW_CLOSED: CloudApiWindowClosed,
    AUTHENTICATION_TO_USER_ID: AuthenticationToUserId,
}


def failure_from_status_error(error: dict[str, Any]) -> Failure:
    """A ``failed`` status notification's ``errors[0]`` as a :class:`Failure`.

    >>> failure_from_status_error({"code": 131026, "title": "Message Undeliverable."}).reason
    'Message Undeliverable'
    """
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    title = error.get("title") or error.get("message") or (title_of(code) if code else "")
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    cls: type[SendError] = _BY_CODE.get(code, Rejected) if code is not None else Rejected
    return cls(
        code if code is not None else "unknown",
        _CODE_PREFIX.sub("", str(title)).rstrip(".") or "failed",
        details if isinstance(details, str) else None,
    ).failure()

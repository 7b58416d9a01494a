"""Why a campaign request was refused. Raised inside store jobs, so nothing is kept."""

from __future__ import annotations


class CampaignError(Exception):
    """A refusal the caller can act on: an HTTP status, a stable code and a sentence."""

    status = 409
    code = "campaign_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(CampaignError):
    """Bad input; ``field`` names where, e.g. ``steps.1.template``."""

    status = 422
    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.field_message = message


class WrongState(CampaignError):
    """The broadcast or enrolment is not in a state that allows the request."""

    code = "wrong_state"


class AlreadyEnrolled(CampaignError):
    code = "already_enrolled"


class NotEnrolled(CampaignError):
    status = 404
    code = "not_enrolled"

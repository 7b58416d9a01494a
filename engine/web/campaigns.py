"""What the broadcast and sequence routes share: campaign errors as HTTP answers."""

from __future__ import annotations

from engine.campaigns.errors import CampaignError, InvalidField
from engine.outbound.enqueue import TemplateProblem
from engine.web.errors import ApiError


def invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "invalid_request", f"{field}: {message}", fields=[{"field": field, "message": message}]
    )


def campaign_error(error: CampaignError) -> ApiError:
    if isinstance(error, InvalidField):
        return invalid(error.field, error.field_message)
    return ApiError(error.status, error.code, error.message)


def template_error(problem: TemplateProblem, *, prefix: str = "") -> ApiError:
    return invalid(prefix + problem.field, problem.message)

"""The campaign worker's lifetime in the server, and what broadcast and sequence routes share."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from engine.campaigns.broadcasts import BroadcastSettings
from engine.campaigns.errors import CampaignError, InvalidField
from engine.campaigns.worker import CampaignConfig, CampaignWorker
from engine.config import Settings
from engine.outbound.enqueue import TemplateProblem
from engine.web.errors import ApiError
from engine.web.keys import CAMPAIGNS, CLOCK, SENDER, SETTINGS, STORE


def campaign_config(settings: Settings) -> CampaignConfig:
    return CampaignConfig(
        broadcasts=BroadcastSettings(
            batch_size=settings.broadcast_batch_size,
            guard_sample=settings.broadcast_guard_sample,
            guard_max_failure_share=settings.broadcast_guard_max_failure_share,
        ),
        poll_seconds=settings.campaign_poll_seconds,
    )


async def campaigns_lifetime(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx, after the outbound pipeline: the worker wakes the sender when it has
    queued messages."""
    settings = app[SETTINGS]
    worker = CampaignWorker(
        app[STORE], app[CLOCK], campaign_config(settings), on_queued=app[SENDER].wake
    )
    app[CAMPAIGNS] = worker
    if settings.outbound_worker:
        worker.start()
    try:
        yield
    finally:
        await worker.stop()


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

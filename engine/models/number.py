"""A business number: one WhatsApp phone number of the business, with its health.

Several numbers can serve one install. Each has its own throughput (``rate_limit``,
messages a second) and the health Meta reports for it: the quality rating, whether it
is flagged, and its messaging limit tier, which caps the unique customers it may start
conversations with in a rolling 24 hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Quality(StrEnum):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"
    UNKNOWN = "UNKNOWN"


class LimitTier(StrEnum):
    TIER_NOT_SET = "TIER_NOT_SET"
    TIER_50 = "TIER_50"
    TIER_250 = "TIER_250"
    TIER_1K = "TIER_1K"
    TIER_2K = "TIER_2K"
    TIER_10K = "TIER_10K"
    TIER_100K = "TIER_100K"
    TIER_UNLIMITED = "TIER_UNLIMITED"


DAILY_UNIQUE_CUSTOMERS: dict[LimitTier, int | None] = {
    # A number that has not sent yet starts on the lowest tier Meta gives a verified one.
    LimitTier.TIER_NOT_SET: 250,
    LimitTier.TIER_50: 50,
    LimitTier.TIER_250: 250,
    LimitTier.TIER_1K: 1_000,
    LimitTier.TIER_2K: 2_000,
    LimitTier.TIER_10K: 10_000,
    LimitTier.TIER_100K: 100_000,
    LimitTier.TIER_UNLIMITED: None,
}
"""Unique customers a number may start conversations with in a rolling 24 hours."""

DAILY_LIMIT_PERIOD = timedelta(hours=24)


class BusinessNumber(BaseModel):
    model_config = ConfigDict(frozen=True)

    phone_number_id: str
    display_phone_number: str
    rate_limit: int | None = Field(
        default=None, description="messages a second; None: the OUTBOUND_RATE_LIMIT setting"
    )
    quality_rating: Quality = Quality.UNKNOWN
    messaging_limit_tier: LimitTier | None = Field(
        default=None, description="None until Meta reports one: no daily limit is applied"
    )
    flagged: bool = False
    registered_at: datetime
    health_updated_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def daily_limit(self) -> int | None:
        """Unique customers a day the number may start conversations with (None: no cap)."""
        if self.messaging_limit_tier is None:
            return None
        return DAILY_UNIQUE_CUSTOMERS[self.messaging_limit_tier]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> str:
        return "flagged" if self.flagged else "connected"

    @property
    def unhealthy(self) -> bool:
        """Marketing from it risks the number: its quality is RED or it is flagged."""
        return self.flagged or self.quality_rating is Quality.RED


class HealthUpdate(BaseModel):
    """What a quality update changes; None: unchanged."""

    model_config = ConfigDict(frozen=True)

    quality_rating: Quality | None = None
    messaging_limit_tier: LimitTier | None = None
    flagged: bool | None = None

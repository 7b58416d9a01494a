"""A conversation: who answers a contact (the bot or an agent) and the 24-hour window."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, computed_field

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)


def window_open_at(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether free form may reach a contact at ``now``: they wrote within the last 24
    hours (Meta's rule). The one computation of the window; the send rules ask it."""
    return last_inbound_at is not None and now < last_inbound_at + CUSTOMER_SERVICE_WINDOW


class Owner(StrEnum):
    BOT = "bot"
    AGENT = "agent"


class Conversation(BaseModel):
    model_config = ConfigDict(frozen=True)

    contact_id: int
    owner: Owner = Owner.BOT
    agent: str | None = None
    last_inbound_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def window_open_until(self) -> datetime | None:
        """Free text may be sent until then; after it, only templates (Meta's rule)."""
        if self.last_inbound_at is None:
            return None
        return self.last_inbound_at + CUSTOMER_SERVICE_WINDOW

    def window_open(self, now: datetime) -> bool:
        return window_open_at(self.last_inbound_at, now)

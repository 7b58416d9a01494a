"""Meta's per-user marketing limit (error 131049: "not delivered to maintain healthy
ecosystem engagement"): Meta caps how many marketing messages one person gets from all
businesses. It is not the message's fault, so it does not fail at once: it is
``deferred`` and tried again :attr:`MarketingLimitRetry.retry` later, up to
:attr:`MarketingLimitRetry.retries` times, then fails with Meta's reason. Meta says so
either in its answer to the send (the sender) or, as it usually does, in a ``failed``
status afterwards (:mod:`engine.outbound.statuses`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.models.message import Failure


@dataclass(frozen=True, slots=True)
class MarketingLimitRetry:
    retry: timedelta = timedelta(hours=24)
    retries: int = 3

    def after(self, deferrals: int, failure: Failure, *, now: datetime) -> datetime | Failure:
        """After Meta held a message back for the ``deferrals``-th time before: when it
        goes again, or, tried ``retries`` times again already, the failure it ends with.

        >>> from datetime import UTC
        >>> policy = MarketingLimitRetry(timedelta(hours=6), retries=1)
        >>> limited = Failure(code="131049", reason="healthy ecosystem engagement")
        >>> policy.after(0, limited, now=datetime(2026, 1, 1, tzinfo=UTC)).hour
        6
        >>> policy.after(1, limited, now=datetime(2026, 1, 1, tzinfo=UTC)).reason
        'healthy ecosystem engagement (still held back after 2 tries 6 hours apart)'
        """
        if deferrals < self.retries:
            return now + self.retry
        return Failure(
            code=failure.code,
            reason=f"{failure.reason} (still held back after {self.retries + 1} tries "
            f"{self.retry.total_seconds() / 3600:g} hours apart)",
        )


DEFAULT_MARKETING_LIMIT = MarketingLimitRetry()

"""What resumes a waiting flow: the customer's message, a timeout, or an HTTP answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.models.customer_input import CustomerInput


@dataclass(frozen=True, slots=True)
class Timeout:
    """The customer did not answer an ``ask`` in time."""


@dataclass(frozen=True, slots=True)
class HttpResult:
    """How an ``http`` step's call went: a JSON answer, or why there is none.

    >>> HttpResult(status=200, body={"status": "shipped"}).ok
    True
    >>> HttpResult(error="no answer within 5s").ok
    False
    """

    status: int | None = None
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


FlowInput = CustomerInput | Timeout | HttpResult

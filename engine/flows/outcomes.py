"""What a step tells the runtime to do next."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WaitKind(StrEnum):
    REPLY = "reply"  # the customer's next message (or the ask's timeout)
    HTTP = "http"  # the answer of an integration call


class EndStatus(StrEnum):
    COMPLETED = "completed"
    HANDED_OFF = "handed_off"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Go:
    """Go to ``step``; None means the step written below (the flow ends after the last)."""

    step: str | None


@dataclass(frozen=True, slots=True)
class Wait:
    kind: WaitKind
    timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    status: EndStatus = EndStatus.COMPLETED


@dataclass(frozen=True, slots=True)
class Enter:
    """End this flow and start ``flow``."""

    flow: str


Outcome = Go | Wait | Finish | Enter

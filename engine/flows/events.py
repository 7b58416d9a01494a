"""What running a flow produced: the runtime returns these and the caller applies them.

The runtime does no I/O; a :class:`MessageSent` is a message to queue, a
:class:`HttpRequested` a call to make, a :class:`HandedOff` a change of owner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.flows.outcomes import EndStatus, WaitKind
from engine.models.content import OutboundContent


def duration(seconds: float) -> str:
    """A duration as people write it.

    >>> duration(5400), duration(30), duration(86400)
    ('1h30m', '30s', '1d')
    """
    parts = []
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class MessageSent:
    content: OutboundContent

    def describe(self) -> str:
        return f"message ({self.content.kind})"


@dataclass(frozen=True, slots=True)
class ContactNameChanged:
    name: str

    def describe(self) -> str:
        return f"contact name set to {self.name!r}"


@dataclass(frozen=True, slots=True)
class ContactAttributesChanged:
    attributes: dict[str, Any]
    """Merged into the contact's attributes; a None value removes the key."""

    def describe(self) -> str:
        parts = [
            f"{key} removed" if value is None else f"{key} = {json.dumps(value)}"
            for key, value in self.attributes.items()
        ]
        return "contact attributes: " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ContactTagsChanged:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"+{tag}" for tag in self.added] + [f"-{tag}" for tag in self.removed]
        return "contact tags " + " ".join(parts)


@dataclass(frozen=True, slots=True)
class MarketingOptInChanged:
    """Recorded in the consent ledger with source ``bot`` and the flow id as actor."""

    value: bool
    flow_id: str

    def describe(self) -> str:
        answer = "YES" if self.value else "NO"
        return f"marketing opt-in set to {answer} (consent source bot, actor {self.flow_id})"


@dataclass(frozen=True, slots=True)
class HandedOff:
    flow_id: str
    queue: str | None = None
    note: str | None = None

    def describe(self) -> str:
        where = f" (queue {self.queue})" if self.queue else ""
        note = f". Note: {self.note}" if self.note else ""
        return f"handed off to the agents{where}; the bot stays silent{note}"


@dataclass(frozen=True, slots=True)
class HttpRequested:
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout_seconds: float

    def describe(self) -> str:
        return f"http {self.method} {self.url}"


@dataclass(frozen=True, slots=True)
class Waiting:
    kind: WaitKind
    timeout_seconds: float | None = None

    def describe(self) -> str:
        if self.kind is WaitKind.HTTP:
            return "waiting for the http answer"
        after = (
            f" (times out after {duration(self.timeout_seconds)})" if self.timeout_seconds else ""
        )
        return f"waiting for the customer's reply{after}"


@dataclass(frozen=True, slots=True)
class FlowStarted:
    flow_id: str

    def describe(self) -> str:
        return f"flow {self.flow_id} started"


@dataclass(frozen=True, slots=True)
class FlowEnded:
    flow_id: str
    status: EndStatus

    def describe(self) -> str:
        return f"flow {self.flow_id} ended ({self.status.value})"


@dataclass(frozen=True, slots=True)
class FlowError:
    """Something the flow author must fix; the flow ends as failed after it."""

    flow_id: str
    step: str | None
    message: str

    def describe(self) -> str:
        where = f" at step {self.step}" if self.step else ""
        return f"error in flow {self.flow_id}{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class InputIgnored:
    """A message arrived that the waiting flow cannot take (it waits for an http answer),
    or that is not said to the bot (a reaction, an edit, a deletion, ...)."""

    reason: str

    def describe(self) -> str:
        return f"input ignored: {self.reason}"


# Campaigns.
@dataclass(frozen=True, slots=True)
class SequenceRequested:
    """Enrol the contact in the sequence named ``sequence``, or unenrol them."""

    action: str
    sequence: str
    flow_id: str

    def describe(self) -> str:
        done = "enrolled in" if self.action == "enrol" else "unenrolled from"
        return f"contact {done} sequence {self.sequence}"


Event = (
    MessageSent
    | ContactNameChanged
    | ContactAttributesChanged
    | ContactTagsChanged
    | MarketingOptInChanged
    | HandedOff
    | HttpRequested
    | Waiting
    | FlowStarted
    | FlowEnded
    | FlowError
    | InputIgnored
    | SequenceRequested
)

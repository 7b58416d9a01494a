"""A contact's place in a flow between two inputs: what the store keeps."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.flows.outcomes import EndStatus, WaitKind
from engine.models.contact import Contact


class SessionStatus(StrEnum):
    WAITING = "waiting"
    COMPLETED = EndStatus.COMPLETED.value
    HANDED_OFF = EndStatus.HANDED_OFF.value
    FAILED = EndStatus.FAILED.value
    INTERRUPTED = EndStatus.INTERRUPTED.value

    @property
    def ended(self) -> bool:
        return self is not SessionStatus.WAITING


class Session(BaseModel):
    """Frozen; the runtime returns a new one for every input.

    ``wait_seq`` grows with every wait, so a timeout or an http answer meant for an
    earlier wait is recognised and dropped.
    """

    model_config = ConfigDict(frozen=True)

    flow_id: str
    contact: Contact
    """The contact as the flow saw it; callers refresh it before resuming."""
    status: SessionStatus
    step: str | None = None
    wait: WaitKind | None = None
    timeout_seconds: float | None = None
    wait_seq: int = 0
    attempts: int = 0
    """Invalid answers so far at the current ``ask``."""
    http_calls: int = 0
    """http calls since the customer last wrote (stops a chain that never waits for them)."""
    vars: dict[str, Any] = {}
    reply: dict[str, Any] | None = None
    """The customer's last message as templates see it (``reply.text``, ...)."""

    @property
    def waiting_for_reply(self) -> bool:
        return self.status is SessionStatus.WAITING and self.wait is WaitKind.REPLY

    @property
    def waiting_for_http(self) -> bool:
        return self.status is SessionStatus.WAITING and self.wait is WaitKind.HTTP

    def with_contact(self, contact: Contact) -> Session:
        return self.model_copy(update={"contact": contact})

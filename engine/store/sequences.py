"""Sequences (drip campaigns), enrolments, and what each step of an enrolment did.

An enrolment's next step waits in :mod:`engine.store.campaign_work` as its timer. A
contact is in a sequence at most once at a time (a unique index on active enrolments).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from engine.models.campaign import (
    Enrolment,
    EnrolmentState,
    MessageSequence,
    SequenceDefinition,
    StepRun,
)
from engine.models.message import Failure


class SequenceRepo(ABC):
    @abstractmethod
    async def create(self, sequence: MessageSequence) -> None:
        """AlreadyExists when another sequence has the name."""

    @abstractmethod
    async def replace(
        self, sequence_id: str, *, name: str, definition: SequenceDefinition, now: datetime
    ) -> MessageSequence:
        """Edit a sequence: a new version. NotFound, or AlreadyExists for a taken name."""

    @abstractmethod
    async def get(self, sequence_id: str) -> MessageSequence | None: ...

    @abstractmethod
    async def get_by_name(self, name: str) -> MessageSequence | None: ...

    @abstractmethod
    async def by_name(self) -> list[MessageSequence]: ...

    @abstractmethod
    async def enrol(self, enrolment: Enrolment) -> bool:
        """Store a new active enrolment; False (and nothing stored) when the contact is
        already in the sequence."""

    @abstractmethod
    async def enrolment(self, enrolment_id: str) -> Enrolment | None: ...

    @abstractmethod
    async def newest_enrolments(self, sequence_id: str, *, limit: int) -> list[Enrolment]:
        """The sequence's latest enrolments, newest first (ids sort by time)."""

    @abstractmethod
    async def latest_enrolment(self, sequence_id: str, contact_id: int) -> Enrolment | None:
        """The contact's active enrolment, else their most recent one."""

    @abstractmethod
    async def advance(
        self, enrolment_id: str, *, next_step: int, anchor_at: datetime, now: datetime
    ) -> None: ...

    @abstractmethod
    async def finish(self, enrolment_id: str, state: EnrolmentState, now: datetime) -> None: ...

    @abstractmethod
    async def record_run(
        self,
        enrolment_id: str,
        *,
        step_index: int,
        version: int,
        due_at: datetime,
        ran_at: datetime,
        message_id: str | None,
        failure: Failure | None,
    ) -> None: ...

    @abstractmethod
    async def runs(self, enrolment_id: str) -> list[StepRun]:
        """The steps that ran, in order, each with its message's current status."""

    @abstractmethod
    async def active_contact_ids(self, sequence_id: str, contact_ids: list[int]) -> set[int]:
        """Which of ``contact_ids`` are in the sequence now."""

    @abstractmethod
    async def bring_timers_forward(self, sequence_id: str, now: datetime) -> int:
        """Make the timers of the sequence's active enrolments due at ``now`` at the
        latest (after an edit, so each is looked at again under the new version)."""

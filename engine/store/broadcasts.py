"""Broadcasts, their audience, and the messages planned for them.

The audience is read in pages by contact id (keyset pagination): a page examines at
most a window of contact ids, so no page, and no transaction, grows with the size of
the contacts table or of the audience. Nothing ever lists the whole audience.

A broadcast's messages are outbox rows (:mod:`engine.store.outbox`);
``broadcast_recipients`` ties each one to its broadcast. Holding, releasing and
skipping act on the broadcast's ``queued`` rows only, a chunk per transaction (a
broadcast may have a hundred thousand): a row the sender has claimed (``sending``)
finishes its send.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.models.campaign import AttributeCondition, Broadcast, BroadcastState, GuardState
from engine.models.message import Failure, MessageStatus


@dataclass(frozen=True, slots=True)
class AudienceQuery:
    """Which contacts a page selects (see :class:`engine.models.campaign.AudienceSpec`).

    The contacts named one by one are either ``contact_ids`` (a preview: the request's
    list) or the ones stored with broadcast ``broadcast_id``.
    """

    tags: tuple[str, ...] = ()
    all_tags: bool = False
    attributes: tuple[AttributeCondition, ...] = ()
    contact_ids: tuple[int, ...] | None = None
    broadcast_id: str | None = None
    last_inbound: bool = False
    """Read each member's last message time too (a preview; planning does not need it)."""


@dataclass(frozen=True, slots=True)
class AudienceMember:
    contact_id: int
    wa_id: str | None
    user_id: str | None
    opted_in: bool
    last_inbound_at: datetime | None

    @property
    def address(self) -> str:
        address = self.wa_id or self.user_id
        assert address is not None, "a contact has a wa_id or a user_id"
        return address


@dataclass(frozen=True, slots=True)
class AudiencePage:
    members: list[AudienceMember]
    cursor: int
    """The next page starts after this contact id."""
    done: bool
    """No contact after ``cursor`` can be in the audience (as the contacts are now)."""


@dataclass(frozen=True, slots=True)
class RecipientRow:
    """One line of a broadcast's report."""

    contact_id: int
    to: str
    message_id: str
    status: MessageStatus
    failure: Failure | None
    wamid: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class GuardSample:
    """A broadcast's first messages that were to be sent (skipped ones left out)."""

    messages: int
    failures: dict[str, int]
    """Failures with the codes asked for, by code."""


class BroadcastRepo(ABC):
    @abstractmethod
    async def contact_ids(self, wa_ids: Sequence[str]) -> dict[str, int]:
        """The id of each contact known by one of ``wa_ids`` (a number or a user id);
        unknown ones are absent."""

    @abstractmethod
    async def audience_page(
        self, audience: AudienceQuery, *, after: int, limit: int
    ) -> AudiencePage:
        """Up to ``limit`` contacts of ``audience`` after contact id ``after``, in id order,
        with their opt-in (and, when asked, the time of their last message to us)."""

    @abstractmethod
    async def create(self, broadcast: Broadcast, contact_ids: Sequence[int]) -> None:
        """Store a new broadcast and the contacts it names one by one."""

    @abstractmethod
    async def get(self, broadcast_id: str) -> Broadcast | None: ...

    @abstractmethod
    async def remember_request(self, idempotency_key: str, broadcast_id: str) -> None:
        """Keep the key of the request that made the broadcast; :class:`AlreadyExists`
        when a broadcast was made with the key already (a unique constraint)."""

    @abstractmethod
    async def by_request(self, idempotency_key: str) -> str | None:
        """The id of the broadcast made with ``idempotency_key``, if any."""

    @abstractmethod
    async def newest(self, *, before: str | None = None, limit: int = 100) -> list[Broadcast]:
        """Newest first; ``before`` is the last id of the previous page."""

    @abstractmethod
    async def ids_in_state(self, state: BroadcastState) -> list[str]: ...

    @abstractmethod
    async def add_recipients(self, broadcast_id: str, planned: Sequence[tuple[int, str]]) -> None:
        """Tie (contact id, message id) pairs to the broadcast."""

    @abstractmethod
    async def advance(
        self, broadcast_id: str, *, planned_until: int, planned: int, done: bool, now: datetime
    ) -> None:
        """Record a planned batch: the audience is planned up to contact ``planned_until``
        and ``planned`` more rows exist; ``done`` when the audience is all planned."""

    @abstractmethod
    async def set_state(
        self,
        broadcast_id: str,
        state: BroadcastState,
        *,
        now: datetime,
        guard: GuardState | None = None,
        paused_by: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Move to ``state``; a pause records who and why, any other state clears it."""

    @abstractmethod
    async def counts(self, broadcast_id: str) -> dict[str, int]:
        """How many of the broadcast's messages are in each status."""

    @abstractmethod
    async def report(
        self, broadcast_id: str, *, after_contact: int = 0, limit: int = 1000
    ) -> list[RecipientRow]:
        """The broadcast's recipients in contact id order, after ``after_contact``."""

    @abstractmethod
    async def guard_sample(
        self, broadcast_id: str, size: int, codes: Sequence[str]
    ) -> GuardSample: ...

    @abstractmethod
    async def has_pending(self, broadcast_id: str) -> bool:
        """Whether a message of the broadcast is still queued or being sent."""

    @abstractmethod
    async def hold_queued(self, broadcast_id: str, *, after: str, limit: int) -> str | None:
        """Keep queued messages of the broadcast from the sender until released: up to
        ``limit`` of its messages after message id ``after``, in the order they were
        planned. The last message id looked at, or None when none is left."""

    @abstractmethod
    async def release_held(
        self, broadcast_id: str, now: datetime, *, after: str, limit: int
    ) -> str | None:
        """Make held messages of the broadcast due at ``now`` (in chunks, as above)."""

    @abstractmethod
    async def skip_queued(
        self, broadcast_id: str, failure: Failure, now: datetime, *, after: str, limit: int
    ) -> str | None:
        """Move queued messages of the broadcast to ``skipped`` (in chunks, as above)."""

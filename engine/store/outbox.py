"""The outbox: outbound message rows as a work queue for the sender.

A message is a row with a state before anything is sent. The sender *claims* due rows:
the claim moves them to ``sending`` with a lease (an owner and a deadline) in one
committed transaction, before any HTTP call. The sender then records each outcome:
``sent`` with Meta's wamid, back to ``queued`` for a retry, or ``failed``.

Crash safety:

- a row whose lease expired while ``sending`` (its process stopped) is claimed again;
  the attempt is counted in ``ambiguous_attempts`` because the dead process may have
  reached Meta before it stopped;
- a row that has a wamid is never claimed again;
- a status notification that names one of our messages in ``biz_opaque_callback_data``
  lets :meth:`OutboxRepo.adopt_wamid` record the wamid of a send whose answer we lost,
  so the lease expiring later does not send it twice.

Only the head of each contact's queue is claimable (no earlier ``queued``/``sending``
message to the same contact), so a contact gets one message at a time, in order.

The SQLite store claims through its single writer (``UPDATE ... WHERE id IN (SELECT ...)
RETURNING``); a PostgreSQL store implements the same method with ``SELECT ... FOR UPDATE
SKIP LOCKED`` in the sub-select, so several workers never claim the same row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.models.message import Channel, Failure, Message, MessageStatus, TemplateRef
from engine.store.messages import MessageFilter, PolicyInputs


@dataclass(frozen=True, slots=True)
class FailureCount:
    """How many messages failed with one code, and one of their reasons."""

    code: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """How an enqueued message waits in the outbox."""

    priority: int
    recipient: str
    due_at: datetime
    policy: PolicyInputs
    """What the send rules were asked at enqueue; the sender asks again before sending."""
    phone_number_id: str | None = None
    idempotency_key: str | None = None
    callback_url: str | None = None
    request_body: str | None = None
    """The exact JSON to post to the Cloud API (so sending is only posting it)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker now holds in ``sending``."""

    message_id: str
    contact_id: int
    recipient: str
    phone_number_id: str | None
    priority: int
    channel: Channel | None
    policy: PolicyInputs | None
    """What the send rules were asked at enqueue; None for rows queued before it was
    kept (the sender does not send those)."""
    opted_in: bool
    """The contact's marketing opt-in as the claim read it (now, not at enqueue)."""
    last_inbound_at: datetime | None
    """When the contact last wrote, as the claim read it: the window of the moment."""
    request_body: bytes | None
    """What to post; None for rows queued before it was stored (the sender does not
    send those)."""
    attempts: int
    """Including the one that starts now."""
    reclaimed: bool
    """True when the row was taken over from an expired lease."""
    wa_id: str | None = None
    """The contact's number, whose zone is their local time without a ``timezone``."""
    timezone: str | None = None
    """The contact's ``timezone`` attribute as the claim read it."""
    marketing_sent: int = 0
    """MARKETING: how many went to the contact since the claim's ``marketing_since``
    (besides this one), as the claim counted them; 0 for anything else."""
    template: str | None = None
    """``name/language`` of its template (None: not a template)."""
    template_category: str | None = None
    """The template's category in the catalogue now (Meta may have changed it since the
    message was queued); None when it is not a template or no longer in the catalogue."""
    template_status: str | None = None
    """Meta's status of the template now (APPROVED, PAUSED, ...)."""
    deferrals: int = 0
    """Times Meta's per-user marketing limit (131049) put this message off already."""


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str
    wamid: str
    attempt: int
    notice: str | None = None
    """The code of the notice the opt-in rule attached when it was asked before sending
    (e.g. ``quality_rating_risk``), kept in the ``sent`` status's details."""


@dataclass(frozen=True, slots=True)
class Retry:
    message_id: str
    due_at: datetime
    error: str
    details: dict[str, Any] = field(default_factory=dict)
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    message_id: str
    failure: Failure
    details: dict[str, Any] = field(default_factory=dict)
    ambiguous: bool = False
    """The try that ended it may have reached Meta (a timeout on the last try): counted
    in ``ambiguous_attempts`` like a retried one."""


@dataclass(frozen=True, slots=True)
class Released:
    """Not attempted after all (pair-rate spacing, a clean shutdown): queued again, the
    attempt not counted."""

    message_id: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Withheld:
    """Not sent because the opt-in rule, asked again before sending, no longer lets it go
    (the contact opted out after it was queued): recorded ``status`` (skipped or failed)
    with ``failure``, as enqueue would have recorded it; the attempt not counted."""

    message_id: str
    status: MessageStatus
    failure: Failure


@dataclass(frozen=True, slots=True)
class Held:
    """Not attempted: inside the contact's quiet hours, asked again before sending; queued
    again until ``until`` (kept on the message to show), the attempt not counted."""

    message_id: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Waiting:
    """Not sent because its template is not approved at Meta now: queued again, not due,
    until the template is approved (``TemplateRepo.put`` releases it); the attempt not
    counted."""

    message_id: str
    template: str
    """``name/language`` of the template it waits for."""
    reason: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """Meta's per-user marketing limit (131049) kept it from the customer: ``deferred``
    until ``due_at``, then sent again (a new try, a new wamid)."""

    message_id: str
    due_at: datetime
    failure: Failure


Outcome = Sent | Retry | Failed | Released | Withheld | Held | Waiting | Deferred


# Campaigns: many messages of one content at once, for broadcast planning.
@dataclass(frozen=True, slots=True)
class BatchMessage:
    """One recipient's message in a :class:`MessageBatch`."""

    message_id: str
    contact_id: int
    recipient: str
    status: MessageStatus
    failure: Failure | None = None
    request_body: str | None = None
    """The exact JSON to post (queued messages only)."""


@dataclass(frozen=True, slots=True)
class MessageBatch:
    """Outbound messages that share all but their recipient (one template to many)."""

    channel: Channel
    kind: str
    text: str | None
    template: TemplateRef | None
    payload: dict[str, Any] | None
    policy: PolicyInputs
    priority: int
    created_at: datetime
    phone_number_id: str | None
    messages: Sequence[BatchMessage]


@dataclass(frozen=True, slots=True)
class OutboxState:
    attempts: int
    ambiguous_attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    priority: int
    idempotency_key: str | None
    callback_url: str | None
    waits_for_template: str | None = None
    """``name/language`` of the template a queued message waits for."""
    deferrals: int = 0


@dataclass(frozen=True, slots=True)
class ReportRow:
    id: str
    to: str
    channel: Channel | None
    template: TemplateRef | None
    status: MessageStatus
    failure: Failure | None
    attempts: int
    ambiguous_attempts: int
    wamid: str | None
    created_at: datetime
    updated_at: datetime
    held_until: datetime | None = None
    """A MARKETING template held for the contact's quiet hours: when it may go."""


@dataclass(frozen=True, slots=True)
class Numbers:
    """Business numbers a sender holds (see :mod:`engine.store.number_leases`)."""

    held: frozenset[str]
    default: str
    """The number of a row that names none."""


class OutboxRepo(ABC):
    @abstractmethod
    async def add(self, message: Message, schedule: Schedule) -> None:
        """Store a new outbound message with its place in the outbox: what
        :meth:`MessageRepo.insert <engine.store.messages.MessageRepo.insert>` stores, plus
        the outbox columns, in as many statements (enqueue is on the broadcast hot path)."""

    @abstractmethod
    async def add_batch(self, batch: MessageBatch) -> None:
        """Store every message of ``batch`` as :meth:`add` would (queued ones due at
        ``created_at``), in a fixed number of statements whatever its size."""

    @abstractmethod
    async def find_by_idempotency_key(self, key: str) -> str | None:
        """The id of the message created with ``key``, if any."""

    @abstractmethod
    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        expired: bool = True,
        numbers: Numbers | None = None,
        marketing_since: datetime | None = None,
    ) -> list[Claimed]:
        """Move up to ``limit`` due rows to ``sending`` under ``owner``'s lease: queued rows
        whose time has come and (with ``expired``) rows whose lease expired, heads of
        their contact's queue only, most urgent first (priority, then due time, then age),
        and only rows of the business ``numbers`` the sender holds (None: any).
        Each comes with what the opt-in rule needs to be asked again: the inputs stored at
        enqueue and the contact's current opt-in; and, with ``marketing_since`` (the start
        of the frequency cap's period), how many MARKETING templates the contact was
        handed over since then. A claimed row is handed over at ``now``, and a contact
        has one row ``sending`` at a time, so no two claims can both count the room for
        the last one: the claim is the frequency cap's reservation."""

    @abstractmethod
    async def has_due(self, now: datetime, numbers: Numbers | None = None) -> bool:
        """Whether :meth:`claim` would find anything (a cheap read for an idle sender)."""

    @abstractmethod
    async def record(self, owner: str, outcomes: Sequence[Outcome], *, now: datetime) -> None:
        """Apply outcomes. ``Sent`` always records the wamid (it is the truth, whoever
        holds the lease); the others apply only while ``owner`` still holds the row."""

    @abstractmethod
    async def adopt_wamid(self, message_id: str, wamid: str, *, at: datetime) -> bool:
        """Record the wamid of an outbound message that has none yet (a status named it in
        ``biz_opaque_callback_data``); a queued or sending row becomes ``sent``. True when
        the wamid was recorded."""

    @abstractmethod
    async def defer(
        self, message_id: str, *, failure: Failure, due_at: datetime, at: datetime
    ) -> bool:
        """A message Meta accepted and then reported failed with its per-user marketing
        limit (131049): ``deferred`` until ``due_at`` (its wamid let go, its deferrals
        counted), then claimed and sent again. False when it had reached a final status."""

    @abstractmethod
    async def state(self, message_id: str) -> OutboxState | None: ...

    @abstractmethod
    async def report(self, where: MessageFilter) -> list[ReportRow]:
        """Outbound messages matching ``where`` in creation order (``after_id`` pages)."""

    @abstractmethod
    async def failure_summary(self, where: MessageFilter) -> list[FailureCount]:
        """The failed and skipped outbound messages matching ``where``, counted by
        failure code, most first."""

    @abstractmethod
    async def report_counts(self, where: MessageFilter) -> dict[str, int]:
        """How many outbound messages match ``where`` by status, and ``ambiguous``: how
        many were tried again after an attempt with an unknown outcome."""

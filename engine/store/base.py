"""The store's contract: one writer that batches transactions, readers that run beside it.

Callers never see SQL. They hand the store a *job*, an async function of a
:class:`Tx`, and get its result once the job's changes are committed::

    contact = await store.write(lambda tx: tx.contacts.get("16505551234"))

The SQLite store runs jobs one after another on a single connection and commits
several of them together (group commit), each inside its own savepoint, so a job
that raises leaves no trace and the others still commit. A job must do no I/O
other than through ``tx`` and must not wait on anything outside the store: the
writer waits for it.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from engine.store.agents import AgentRepo
from engine.store.announcements import Topic
from engine.store.broadcasts import BroadcastRepo
from engine.store.callbacks import CallbackRepo
from engine.store.campaign_work import CampaignWorkRepo
from engine.store.consent_intents import ConsentIntentRepo
from engine.store.contacts import ContactRepo
from engine.store.conversations import ConversationRepo
from engine.store.desk import DeskRepo
from engine.store.desk_work import AssignmentRepo, DeskLogRepo, SavedReplyRepo, SearchRepo
from engine.store.flow_sessions import FlowSessionRepo
from engine.store.inbound import InboundRepo
from engine.store.messages import MessageRepo
from engine.store.number_leases import NumberLeaseRepo
from engine.store.outbox import OutboxRepo
from engine.store.sequences import SequenceRepo
from engine.store.settings import SettingRepo
from engine.store.templates import TemplateRepo

T = TypeVar("T")


class Tx(ABC):
    """The repositories, bound to one transaction."""

    contacts: ContactRepo
    # Opt-out intents read in customers' words, asked about or suggested to agents.
    consent_intents: ConsentIntentRepo
    conversations: ConversationRepo
    messages: MessageRepo
    settings: SettingRepo
    templates: TemplateRepo
    # Agents: accounts and sessions; the agents' desk.
    agents: AgentRepo
    desk: DeskRepo
    # The desk's day: assignment, private notes, saved replies, search.
    assignments: AssignmentRepo
    desk_log: DeskLogRepo
    saved_replies: SavedReplyRepo
    search: SearchRepo
    # Bot flows.
    flow_sessions: FlowSessionRepo
    # Inbound: hand-offs to the conversation handler, early statuses.
    inbound: InboundRepo
    # Outbound: the outbox work queue and integration callback deliveries.
    outbox: OutboxRepo
    callbacks: CallbackRepo
    # Campaigns: broadcasts, sequences, and the due work that plans them.
    broadcasts: BroadcastRepo
    sequences: SequenceRepo
    campaign_work: CampaignWorkRepo
    # Leases of the business numbers' sending, one worker each.
    number_leases: NumberLeaseRepo

    @abstractmethod
    def announce(self, topic: Topic) -> None:
        """Wake the subscribers of ``topic`` (in every process on this database) once
        this transaction commits; nothing if the job raises."""


Job = Callable[[Tx], Awaitable[T]]


class Store(ABC):
    @abstractmethod
    async def write(self, job: Job[T]) -> T:
        """Run ``job`` in a write transaction; return its result after the commit."""

    @abstractmethod
    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only view of the committed state: ``async with store.read() as tx``."""

    @abstractmethod
    def subscribe(self, topic: Topic) -> asyncio.Event:
        """An event set on each committed announcement of ``topic`` (see
        :mod:`engine.store.announcements`); the subscriber clears it before it looks for
        work, so an announcement made while it looks is not lost."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise unless the database answers."""

    @abstractmethod
    async def close(self) -> None:
        """Finish the queued writes, then close every connection."""

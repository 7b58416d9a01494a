"""Who has a conversation: assign or transfer it to a named agent (with a note the
timeline shows), resolve it, and see how many open conversations each agent has.

An agent may assign a conversation the bot has, one waiting in the queue, or their own
(a transfer); one another agent has needs that agent or an admin. Resolving keeps the
owner; the customer's next message reopens the conversation by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.agents.desk import require_agent
from engine.agents.refusals import ConversationOwned, UnknownAgent
from engine.agents.work_refusals import InvalidField
from engine.contacts.directory import require_contact
from engine.models.agent import Agent, AgentRole
from engine.models.contact import Contact
from engine.models.conversation import Owner
from engine.models.desk_work import Assignment, DeskEntry, EntryKind
from engine.store import Store, Tx

NOTE_MAX = 1000


@dataclass(frozen=True, slots=True)
class Workload:
    agent: Agent
    open: int


def check_note(note: str | None) -> str | None:
    if note is None or not note.strip():
        return None
    if len(note) > NOTE_MAX:
        raise InvalidField("note", f"at most {NOTE_MAX} characters")
    return note.strip()


async def _may_change(tx: Tx, contact: Contact, by: Agent) -> None:
    conversation = await tx.conversations.get(contact.id)
    holder = conversation.agent if conversation.owner is Owner.AGENT else None
    if holder is not None and holder != by.email and by.role is not AgentRole.ADMIN:
        holder_agent = await tx.agents.get(holder)
        raise ConversationOwned(contact.address, holder_agent.name if holder_agent else holder)


async def assign_as(
    store: Store, address: str, by: str, to: str, *, note: str | None, now: datetime
) -> Assignment:
    note = check_note(note)

    async def job(tx: Tx) -> Assignment:
        contact = await require_contact(tx, address)
        author = await require_agent(tx, by)
        try:
            assignee = await require_agent(tx, to)
        except UnknownAgent:
            raise InvalidField("to", f"there is no agent with email {to}") from None
        await _may_change(tx, contact, author)
        await tx.assignments.assign(contact.id, assignee.email, at=now)
        await tx.desk_log.add(
            contact.id,
            DeskEntry(
                kind=EntryKind.ASSIGNED,
                author=author.email,
                assignee=assignee.email,
                text=note,
                at=now,
            ),
        )
        return await tx.assignments.get(contact.id)

    return await store.write(job)


async def resolve_as(store: Store, address: str, by: str, *, now: datetime) -> Assignment:
    async def job(tx: Tx) -> Assignment:
        contact = await require_contact(tx, address)
        author = await require_agent(tx, by)
        await _may_change(tx, contact, author)
        if not (await tx.assignments.get(contact.id)).resolved:
            await tx.assignments.resolve(contact.id, at=now)
            await tx.desk_log.add(
                contact.id, DeskEntry(kind=EntryKind.RESOLVED, author=author.email, at=now)
            )
        return await tx.assignments.get(contact.id)

    return await store.write(job)


async def reopen_as(store: Store, address: str, by: str, *, now: datetime) -> Assignment:
    async def job(tx: Tx) -> Assignment:
        contact = await require_contact(tx, address)
        author = await require_agent(tx, by)
        if (await tx.assignments.get(contact.id)).resolved:
            await tx.assignments.reopen(contact.id)
            await tx.desk_log.add(
                contact.id, DeskEntry(kind=EntryKind.REOPENED, author=author.email, at=now)
            )
        return await tx.assignments.get(contact.id)

    return await store.write(job)


async def workload(tx: Tx) -> list[Workload]:
    """Every agent with their open conversations, the busiest first."""
    counts = await tx.assignments.workload()
    agents = await tx.agents.all()
    return sorted(
        (Workload(agent, counts.get(agent.email, 0)) for agent in agents),
        key=lambda load: (-load.open, load.agent.name.lower()),
    )

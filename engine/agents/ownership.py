"""Taking a conversation over from the bot, and giving it back.

While an agent owns a conversation (``Owner.AGENT`` with the agent's email) the
inbound side hands customer messages to the agents and the bot says nothing; a
flow's hand-off step leaves it ``Owner.AGENT`` with no agent: waiting in the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from engine.agents.refusals import ConversationOwned
from engine.models.agent import Agent, AgentRole, ConversationEvent, EventKind
from engine.models.contact import Contact
from engine.models.conversation import Conversation, Owner
from engine.store import Tx


class FlowRestarter(Protocol):
    """What a release calls to start a bot flow again (the flows runtime provides it)."""

    def has_flow(self, name: str) -> bool:
        """Whether a flow of that name is loaded; checked before anything changes."""

    async def restart(self, contact: Contact, flow: str) -> None:
        """Start ``flow`` for ``contact`` now that the bot owns the conversation again."""


async def take_over(
    tx: Tx, contact: Contact, agent: Agent, *, now: datetime
) -> tuple[Conversation, bool]:
    """Make ``agent`` the owner; ConversationOwned when another agent is. Returns the
    conversation and whether it changed hands (taking over one's own is a no-op)."""
    conversation, changed = await tx.desk.claim(contact.id, agent.email)
    if conversation.agent != agent.email:
        assert conversation.agent is not None
        raise ConversationOwned(contact.address, conversation.agent)
    if changed:
        await tx.desk.record_event(
            contact.id, ConversationEvent(kind=EventKind.TAKEOVER, agent=agent.email, at=now)
        )
    return conversation, changed


async def release(
    tx: Tx,
    contact: Contact,
    *,
    by: Agent | None,
    restart_flow: str | None = None,
    now: datetime,
) -> Conversation:
    """Give the conversation back to the bot. An agent may release their own
    conversation or one in the queue, an admin any; the API (``by`` None) any."""
    # One writer runs this job, so the read below cannot go stale before the write;
    # a PostgreSQL store reads the row FOR UPDATE.
    current = await tx.conversations.get(contact.id)
    if (
        by is not None
        and by.role is not AgentRole.ADMIN
        and current.owner is Owner.AGENT
        and current.agent not in (None, by.email)
    ):
        raise ConversationOwned(contact.address, current.agent)
    released = await tx.conversations.set_owner(contact.id, Owner.BOT, None)
    if current.owner is Owner.AGENT or restart_flow is not None:
        await tx.desk.record_event(
            contact.id,
            ConversationEvent(
                kind=EventKind.RELEASE,
                agent=None if by is None else by.email,
                flow=restart_flow,
                at=now,
            ),
        )
    return released

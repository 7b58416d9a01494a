"""The agents' desk use cases the REST API and the console share, for the agent named
by email: take a conversation over, release it, compose a message. Each is one store job;
a refusal is a :class:`engine.agents.refusals.DeskError` and changes nothing."""

from __future__ import annotations

from datetime import datetime

from engine.agents.compose import Composed, ComposeRequest, compose
from engine.agents.ownership import FlowRestarter, release, take_over
from engine.agents.refusals import UnknownAgent, UnknownFlow
from engine.contacts.directory import require_contact
from engine.models.agent import Agent
from engine.models.contact import Contact
from engine.models.content import MediaContent, TemplateContent, TextContent
from engine.models.conversation import Conversation
from engine.store import Store, Tx


async def require_agent(tx: Tx, email: str) -> Agent:
    agent = await tx.agents.get(email)
    if agent is None:
        raise UnknownAgent(email)
    return agent


async def compose_as(
    store: Store,
    address: str,
    email: str,
    content: TextContent | TemplateContent | MediaContent,
    *,
    confirm_opted_out: bool,
    now: datetime,
) -> Composed:
    async def job(tx: Tx) -> Composed:
        contact = await require_contact(tx, address)
        agent = await require_agent(tx, email)
        return await compose(
            tx, contact, ComposeRequest(agent, content, confirm_opted_out), now=now
        )

    return await store.write(job)


async def take_over_as(
    store: Store, address: str, email: str, *, now: datetime
) -> tuple[Contact, Conversation]:
    async def job(tx: Tx) -> tuple[Contact, Conversation]:
        contact = await require_contact(tx, address)
        agent = await require_agent(tx, email)
        conversation, _ = await take_over(tx, contact, agent, now=now)
        return contact, conversation

    return await store.write(job)


async def release_as(
    store: Store,
    address: str,
    email: str | None,
    *,
    restart_flow: str | None,
    restarter: FlowRestarter | None,
    now: datetime,
) -> tuple[Contact, Conversation, bool]:
    """Release, then restart the flow when asked and a flows runtime is wired in.
    Returns whether the flow was started."""
    if restart_flow is not None and restarter is not None and not restarter.has_flow(restart_flow):
        raise UnknownFlow(restart_flow)

    async def job(tx: Tx) -> tuple[Contact, Conversation]:
        contact = await require_contact(tx, address)
        agent = None if email is None else await require_agent(tx, email)
        return contact, await release(tx, contact, by=agent, restart_flow=restart_flow, now=now)

    contact, conversation = await store.write(job)
    if restart_flow is not None and restarter is not None:
        await restarter.restart(contact, restart_flow)
        return contact, conversation, True
    return contact, conversation, False

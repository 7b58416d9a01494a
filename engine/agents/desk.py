"""The agents' desk use cases the REST API and the console share, for the agent named
by email: take a conversation over, release it, compose a message. Each is one store job;
a refusal is a :class:`engine.agents.refusals.DeskError` and changes nothing."""

from __future__ import annotations

from datetime import datetime

from engine.agents.compose import Composed, ComposeRequest, compose, composed_before
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
    idempotency_key: str | None = None,
) -> Composed:
    """Compose as the agent; with an ``idempotency_key``, a repeat (a double click, a
    client's retry, another process racing) answers the first message, sending nothing."""

    async def job(tx: Tx) -> Composed:
        contact = await require_contact(tx, address)
        agent = await require_agent(tx, email)
        request = ComposeRequest(agent, content, confirm_opted_out, idempotency_key)
        return await compose(tx, contact, request, now=now)

    async def earlier(tx: Tx) -> Composed | None:
        contact = await require_contact(tx, address)
        agent = await require_agent(tx, email)
        request = ComposeRequest(agent, content, confirm_opted_out, idempotency_key)
        return await composed_before(tx, contact, request)

    try:
        return await store.write(job)
    except Exception:
        # Two tries of one key racing in different processes: the unique key lets one
        # through; the other answers what that one recorded.
        if idempotency_key is None:
            raise
        first = await store.write(earlier)
        if first is None:
            raise
        return first


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

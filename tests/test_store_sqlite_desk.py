"""The SQLite agents and desk repositories: claims, sessions, sign-in failures, unread."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import FrozenClock
from engine.models import ConsentSource, Owner
from engine.models.agent import AgentRole
from engine.store import AlreadyExists, Store, Tx
from engine.store.agents import NewAgent
from engine.store.contacts import Consent, NewContact
from engine.store.desk import SummaryFilter
from tests.desk import receive


@pytest.fixture
async def contact_id(store: Store) -> int:
    async def setup(tx: Tx) -> int:
        contact = await tx.contacts.create(
            NewContact(wa_id="16505551234", marketing_opt_in=True), Consent(ConsentSource.API)
        )
        return contact.id

    return await store.write(setup)


async def test_a_claim_never_takes_a_conversation_from_another_agent(
    store: Store, contact_id: int
) -> None:
    ann, changed = await store.write(lambda tx: tx.desk.claim(contact_id, "ann@example.com"))
    assert (ann.owner, ann.agent, changed) == (Owner.AGENT, "ann@example.com", True)
    again, changed = await store.write(lambda tx: tx.desk.claim(contact_id, "ann@example.com"))
    assert (again.agent, changed) == ("ann@example.com", False)
    bob, changed = await store.write(lambda tx: tx.desk.claim(contact_id, "bob@example.com"))
    assert (bob.agent, changed) == ("ann@example.com", False)

    await store.write(lambda tx: tx.conversations.set_owner(contact_id, Owner.AGENT, None))
    queued, changed = await store.write(lambda tx: tx.desk.claim(contact_id, "bob@example.com"))
    assert (queued.agent, changed) == ("bob@example.com", True), "the queue can be claimed"


async def test_sessions_expire_and_emails_are_unique(store: Store, clock: FrozenClock) -> None:
    new = NewAgent("Ann", "Ann@Example.com", AgentRole.AGENT, "scrypt$...")
    agent = await store.write(lambda tx: tx.agents.create(new))
    assert agent.email == "ann@example.com"
    with pytest.raises(AlreadyExists):
        await store.write(lambda tx: tx.agents.create(new))

    expires = clock.now() + timedelta(hours=1)
    await store.write(lambda tx: tx.agents.start_session(agent.id, "digest", "csrf", expires))
    async with store.read() as tx:
        live = await tx.agents.session("digest", now=clock.now())
        gone = await tx.agents.session("digest", now=expires)
    assert live is not None
    assert (live.agent.email, live.csrf_token) == ("ann@example.com", "csrf")
    assert gone is None
    assert await store.write(lambda tx: tx.agents.purge_sessions(expired_before=expires)) == 1


async def test_sign_in_failures_are_counted_per_key_and_cleared(
    store: Store, clock: FrozenClock
) -> None:
    start = clock.now()
    for minutes in (0, 5, 10):
        at = start + timedelta(minutes=minutes)
        await store.write(lambda tx, at=at: tx.agents.record_login_failure("email:a", at))  # type: ignore[misc]
    async with store.read() as tx:
        assert len(await tx.agents.login_failures("email:a", since=start)) == 2
        assert await tx.agents.login_failures("email:b", since=start) == []
    await store.write(lambda tx: tx.agents.clear_login_failures("email:a"))
    async with store.read() as tx:
        assert await tx.agents.login_failures("email:a", since=start - timedelta(days=1)) == []


async def test_reading_moves_the_unread_mark_forward_only(
    store: Store, clock: FrozenClock, contact_id: int
) -> None:
    first = await receive(store, "16505551234", "one", clock.now())
    await receive(store, "16505551234", "two", clock.now() + timedelta(minutes=1))

    async def unread() -> int:
        async with store.read() as tx:
            (summary,) = await tx.desk.summaries(SummaryFilter())
        return summary.unread

    assert await unread() == 2
    await store.write(lambda tx: tx.desk.mark_read(contact_id, agent="a", at=clock.now()))
    assert await unread() == 1
    later, earlier = clock.now() + timedelta(minutes=5), clock.now() - timedelta(minutes=5)
    await store.write(lambda tx: tx.desk.mark_read(contact_id, agent="a", at=later))
    await store.write(lambda tx: tx.desk.mark_read(contact_id, agent="b", at=earlier))
    assert await unread() == 0

    async with store.read() as tx:
        after_first = await tx.desk.recent_cursor(contact_id, keep=1)
        everything = await tx.desk.recent_cursor(contact_id, keep=2)
    assert (after_first, everything) == (first.id, None)

"""The console's conversation lists: the time of one load (queue, mine and bot lists
with unread counts) as conversations and messages grow, against a baseline; then the
live updates: ``--watchers`` agents with the console open (server-sent events) on a
real web process, a customer's message posted to its webhook, and the time until the
event reaches every watching agent (p50/p99), with the web process's CPU time per
update against the same updates with nobody watching (the baseline).

The lists' baseline, run in the same process, is the plain list of the same
conversations (``tx.conversations.list``) that knows nothing of messages or reads.
Run: ``.venv/bin/python -m bench.desk_summaries [--conversations 10000] [--messages 10]
[--watchers 100] [--updates 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from engine.agents.passwords import hash_password
from engine.clock import FrozenClock
from engine.devtools.cluster import APP_SECRET, Cluster
from engine.ids import new_id
from engine.models import ConsentSource, Direction, Message, MessageStatus, Owner
from engine.models.agent import AgentRole
from engine.store import Store, Tx, open_store
from engine.store.agents import NewAgent
from engine.store.contacts import Consent, NewContact
from engine.store.desk import SummaryFilter
from engine.web.console.auth import SESSION_COOKIE, token_sha256
from engine.whatsapp.signature import HEADER, sign

ROUNDS = 20
SPACING_SECONDS = 0.1
"""Between two customers' messages (ten a second reach the desk)."""
TEXT_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks" / "text.json"


async def agents_signed_in(store: Store, count: int) -> list[str]:
    """``count`` agents, each with a console session; their session cookies' tokens."""
    hashed = hash_password("bench password 1")  # one hash: sign-in is not measured
    expires = datetime.now(UTC) + timedelta(hours=2)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]

    async def job(tx: Tx) -> None:
        for n, token in enumerate(tokens):
            agent = await tx.agents.create(
                NewAgent(f"Agent {n}", f"agent{n}@example.com", AgentRole.AGENT, hashed)
            )
            await tx.agents.start_session(
                agent.id, token_sha256(token), secrets.token_urlsafe(32), expires
            )

    await store.write(job)
    return tokens


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def notification(wa_id: str, text: str) -> bytes:
    data = json.loads(TEXT_FIXTURE.read_text())
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    value["messages"][0].update(
        {
            "id": f"wamid.{new_id()}",
            "from": wa_id,
            "text": {"body": text},
            "timestamp": str(int(time.time())),
        }
    )
    return json.dumps(data).encode()


class Tally:
    """Live markers arrived at all watchers; ``done`` once ``expected`` have."""

    def __init__(self) -> None:
        self.count = 0
        self.expected = -1
        self.done = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Watching:
    """One agent's open console: its event stream, and when each marker arrived."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str, tally: Tally) -> None:
        self.arrived: dict[str, float] = {}
        self._tally = tally
        self.ready = asyncio.Event()
        self._task = asyncio.create_task(self._read(session, base, token))

    async def _read(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        headers = {"Cookie": f"{SESSION_COOKIE}={token}"}
        async with session.get(f"{base}/console/events", headers=headers) as response:
            assert response.status == 200, response.status
            self.ready.set()
            async for line in response.content:
                if line.startswith(b"data: ") and b'"marker ' in line:
                    text = json.loads(line[6:])["message"]["text"]
                    if text not in self.arrived:
                        self.arrived[text] = time.perf_counter()
                        if text.startswith("marker live"):
                            self._tally.add()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def post_updates(
    session: aiohttp.ClientSession, base: str, conversations: int, updates: int, tag: str
) -> dict[str, float]:
    """Customers' messages to the webhook, spaced out; when each was posted."""
    posted: dict[str, float] = {}
    for k in range(updates):
        text = f"marker {tag} {k}"
        wa_id = f"1650{(20 * k) % conversations:07d}"  # waiting in the queue: no bot
        raw = notification(wa_id, text)
        posted[text] = time.perf_counter()
        async with session.post(
            f"{base}/webhook", data=raw, headers={HEADER: sign(raw, APP_SECRET)}
        ) as answer:
            assert answer.status == 200, await answer.text()
        await asyncio.sleep(SPACING_SECONDS)
    return posted


async def live(
    url: str, workdir: Path, tokens: list[str], conversations: int, updates: int
) -> None:
    with Cluster(url, workdir) as cluster:
        web = cluster.web()
        pid = web.process.pid
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await post_updates(session, web.url, conversations, 5, "warm")
            cpu = cpu_seconds(pid)
            await post_updates(session, web.url, conversations, updates, "alone")
            alone = (cpu_seconds(pid) - cpu) / updates

            tally = Tally()
            watching = [Watching(session, web.url, token, tally) for token in tokens]
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in watching)), 60)
            await post_updates(session, web.url, conversations, 5, "warm-live")
            cpu = cpu_seconds(pid)
            tally.expected = len(tokens) * updates
            posted = await post_updates(session, web.url, conversations, updates, "live")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tally.done.wait(), 10)
            watched = (cpu_seconds(pid) - cpu) / updates
            for w in watching:
                await w.close()
    delays = sorted(
        (w.arrived[text] - at) * 1000
        for w in watching
        for text, at in posted.items()
        if text in w.arrived
    )
    expected = len(tokens) * updates
    if not delays:
        print("live updates: no event arrived")
        return
    p50 = delays[len(delays) // 2]
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"live updates: {len(tokens)} agents watching, {updates} customer messages "
        f"{SPACING_SECONDS * 1000:.0f} ms apart, {len(delays)}/{expected} events arrived"
    )
    print(f"  webhook to every watching agent: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  web process CPU per update, nobody watching (baseline): {alone * 1000:.1f} ms")
    print(f"  web process CPU per update, {len(tokens)} watching: {watched * 1000:.1f} ms")
    print(f"  of which live updates: {(watched - alone) * 1000:.1f} ms")


async def fill(store: Store, conversations: int, messages: int, start: datetime) -> None:
    async def chunk(tx: Tx, first: int, last: int) -> None:
        for n in range(first, last):
            contact = await tx.contacts.create(
                NewContact(wa_id=f"1650{n:07d}", marketing_opt_in=n % 10 != 0),
                Consent(ConsentSource.INBOUND),
            )
            at = start + timedelta(seconds=n)
            for k in range(messages):
                await tx.messages.insert(
                    Message(
                        id=new_id(),
                        direction=Direction.INBOUND if k % 2 == 0 else Direction.OUTBOUND,
                        contact_id=contact.id,
                        contact=contact.address,
                        kind="text",
                        text=f"message {k}",
                        status=MessageStatus.RECEIVED,
                        created_at=at + timedelta(seconds=k),
                        updated_at=at + timedelta(seconds=k),
                    )
                )
            await tx.conversations.record_inbound(contact.id, at)
            if n % 20 == 0:  # 5% wait in the queue, 5% are Ann's
                await tx.conversations.set_owner(contact.id, Owner.AGENT, None)
            elif n % 20 == 1:
                await tx.conversations.set_owner(contact.id, Owner.AGENT, "ann@example.com")
            if n % 3 == 0:
                await tx.desk.mark_read(contact.id, agent="ann@example.com", at=at)

    for first in range(0, conversations, 500):
        last = min(first + 500, conversations)
        await store.write(lambda tx, a=first, b=last: chunk(tx, a, b))  # type: ignore[misc]


async def timed(store: Store, poll: bool) -> float:
    started = time.perf_counter()
    for _ in range(ROUNDS):
        async with store.read() as tx:
            if poll:
                # As the console loads them: unread counts as Ann has read.
                ann = "ann@example.com"
                await tx.desk.summaries(SummaryFilter(waiting=True, reader=ann))
                await tx.desk.summaries(SummaryFilter(agent=ann, reader=ann))
                await tx.desk.summaries(SummaryFilter(owner=Owner.BOT, reader=ann))
            else:
                await tx.conversations.list(owner=Owner.AGENT)
                await tx.conversations.list(owner=Owner.AGENT)
                await tx.conversations.list(owner=Owner.BOT)
    return (time.perf_counter() - started) / ROUNDS


async def main(conversations: int, messages: int, watchers: int, updates: int) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'bench.db'}"
        store = await open_store(url, clock=FrozenClock(start))
        try:
            began = time.perf_counter()
            await fill(store, conversations, messages, start)
            print(
                f"filled {conversations} conversations x {messages} messages "
                f"in {time.perf_counter() - began:.1f} s"
            )
            await timed(store, True)  # warm the page cache
            baseline = await timed(store, False)
            poll = await timed(store, True)
            tokens = await agents_signed_in(store, watchers) if watchers else []
        finally:
            await store.close()
        print(f"baseline (three plain conversation lists): {baseline * 1000:.2f} ms")
        print(f"console lists (three lists with unread counts): {poll * 1000:.2f} ms")
        print(f"ratio: {poll / baseline:.1f}x")
        if watchers:
            await live(url, Path(workdir), tokens, conversations, updates)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.conversations, args.messages, args.watchers, args.updates))

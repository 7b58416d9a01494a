"""The console's conversation lists: the time of one poll (queue, mine and bot lists
with unread counts) as conversations and messages grow, against a baseline.

The baseline, run in the same process, is the plain list of the same conversations
(``tx.conversations.list``) that knows nothing of messages or reads. The console's
script polls the lists every four seconds per open console.
Run: ``.venv/bin/python -m bench.desk_summaries [--conversations 10000] [--messages 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.clock import FrozenClock
from engine.ids import new_id
from engine.models import ConsentSource, Direction, Message, MessageStatus, Owner
from engine.store import Store, Tx, open_store
from engine.store.contacts import Consent, NewContact
from engine.store.desk import SummaryFilter

ROUNDS = 20


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
                await tx.desk.summaries(SummaryFilter(waiting=True))
                await tx.desk.summaries(SummaryFilter(agent="ann@example.com"))
                await tx.desk.summaries(SummaryFilter(owner=Owner.BOT))
            else:
                await tx.conversations.list(owner=Owner.AGENT)
                await tx.conversations.list(owner=Owner.AGENT)
                await tx.conversations.list(owner=Owner.BOT)
    return (time.perf_counter() - started) / ROUNDS


async def main(conversations: int, messages: int) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as workdir:
        store = await open_store(
            f"sqlite:///{Path(workdir) / 'bench.db'}", clock=FrozenClock(start)
        )
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
        finally:
            await store.close()
    print(f"baseline (three plain conversation lists): {baseline * 1000:.2f} ms")
    print(f"console poll (three lists with unread counts): {poll * 1000:.2f} ms")
    print(f"ratio: {poll / baseline:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.conversations, args.messages))

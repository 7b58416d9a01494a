"""The console's search: contacts (name, number, user id, tag) and message text, as the
store grows, against a full scan of the messages' text.

The baseline, in the same process, reads every message's text and looks for the words in
Python, which is what a search without an index costs. Run on SQLite, or PostgreSQL with
``--database-url postgresql://...`` (an empty database).
Run: ``.venv/bin/python -m bench.desk_search [--contacts 10000] [--messages 10]``.
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
from engine.models import ConsentSource, Direction, Message, MessageStatus
from engine.store import Store, Tx, open_store
from engine.store.contacts import Consent, NewContact
from engine.store.messages import MessageFilter

ROUNDS = 20
WORDS = ("jacket", "refund", "delivery", "address", "invoice", "size", "colour", "voucher")


async def fill(store: Store, contacts: int, messages: int, start: datetime) -> None:
    async def chunk(tx: Tx, first: int, last: int) -> None:
        for n in range(first, last):
            contact = await tx.contacts.create(
                NewContact(
                    wa_id=f"1650{n:07d}",
                    name=f"Customer {n}",
                    marketing_opt_in=True,
                    tags=(f"t{n % 50}",),
                ),
                Consent(ConsentSource.INBOUND),
            )
            for k in range(messages):
                at = start + timedelta(seconds=n * messages + k)
                word = WORDS[(n + k) % len(WORDS)]
                await tx.messages.insert(
                    Message(
                        id=new_id(),
                        direction=Direction.INBOUND,
                        contact_id=contact.id,
                        contact=contact.address,
                        kind="text",
                        text=f"about my {word} for order A-{n:05d}-{k}",
                        status=MessageStatus.RECEIVED,
                        created_at=at,
                        updated_at=at,
                    )
                )

    # Small transactions: PostgreSQL's serializable ones keep a lock per row they read.
    for first in range(0, contacts, 100):
        last = min(first + 100, contacts)
        await store.write(lambda tx, a=first, b=last: chunk(tx, a, b))  # type: ignore[misc]


async def search(store: Store, text: str) -> int:
    async with store.read() as tx:
        return len(await tx.search.contacts(text)) + len(await tx.search.messages(text))


async def timed(store: Store, texts: list[str]) -> float:
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for text in texts:
            await search(store, text)
    return (time.perf_counter() - started) / (ROUNDS * len(texts))


async def scan(store: Store, text: str) -> float:
    started = time.perf_counter()
    async with store.read() as tx:
        rows = await tx.messages.find(MessageFilter(limit=10_000_000))
    found = [m for m in rows if m.text and text in m.text.lower()]
    assert found
    return time.perf_counter() - started


async def main(contacts: int, messages: int, database_url: str | None) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as workdir:
        url = database_url or f"sqlite:///{Path(workdir) / 'bench.db'}"
        store = await open_store(url, clock=FrozenClock(start))
        try:
            began = time.perf_counter()
            await fill(store, contacts, messages, start)
            print(
                f"filled {contacts} contacts x {messages} messages "
                f"in {time.perf_counter() - began:.1f} s ({url.split(':')[0]})"
            )
            texts = ["A-01234", "customer 777", "+1 650 000 12", "t42", "voucher for order A-0999"]
            await timed(store, texts)  # warm the caches
            per_search = await timed(store, texts)
            baseline = await scan(store, "a-01234")
        finally:
            await store.close()
    print(f"one search (contacts and messages, the first 20 of each): {per_search * 1000:.2f} ms")
    print(f"baseline (read every message and look in Python): {baseline * 1000:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.contacts, args.messages, args.database_url))

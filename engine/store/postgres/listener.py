"""Announcements across processes: NOTIFY in the transaction, LISTEN on one connection.

A write job's announcements are sent with ``pg_notify`` just before its COMMIT, so
PostgreSQL delivers them when (and only if) that transaction commits: a job rolled back,
or a try of it that lost a serialization conflict and ran again, announces nothing. Each
store keeps one connection of its own (not a pooled one: a pooled connection is reset
and reused) that LISTENs and sets its subscribers' events. If that connection drops it
is opened again with a growing pause, and every event is set once: notifications sent
while nobody listened are lost, and the parts look for work when woken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import asyncpg

from engine.store.announcements import Subscribers, Topic

log = logging.getLogger(__name__)

CHANNEL = "optinflow"
"""The one channel; the payload is ``<topic> <store>``: the store that announced it
delivers its own announcements at once, and ignores them when they come back."""
CHECK_SECONDS = 5.0
"""How often an idle listening connection is asked whether it is still there."""
FIRST_PAUSE_SECONDS = 0.1
LONGEST_PAUSE_SECONDS = 5.0
_TOPICS = {topic.value: topic for topic in Topic}


def notify_sql(topics: Iterable[Topic], *, store: str) -> str:
    """The statements that queue ``topics`` in the open transaction (sent when it
    commits), to go in front of its COMMIT: no round trip of their own. Literals, not
    parameters (a string of several statements takes none): topics and the store's
    name are letters and hex digits.

    >>> notify_sql([Topic.OUTBOX], store="ab12")
    "SELECT pg_notify('optinflow', 'outbox ab12'); "
    """
    if not store.isalnum():
        raise ValueError(f"a store's name is letters and digits, not {store!r}")
    return "".join(
        f"SELECT pg_notify('{CHANNEL}', '{topic.value} {store}'); " for topic in sorted(topics)
    )


class Listener:
    """The LISTEN connection of one store; :meth:`close` stops it."""

    def __init__(
        self, url: str, subscribers: Subscribers, *, store: str, connect_timeout: float
    ) -> None:
        self._url = url
        self._store = store
        self._subscribers = subscribers
        self._connect_timeout = connect_timeout
        self._task = asyncio.create_task(self._run(), name="postgres-announcements")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                conn = await asyncpg.connect(self._url, timeout=self._connect_timeout)
            except Exception as error:  # down, restarting, refusing: try again later
                log.warning("could not open the announcements connection: %s", error)
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
                continue
            try:
                await self._listen(conn)
                pause = FIRST_PAUSE_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("the announcements connection was lost: %s", error)
            finally:
                conn.terminate()
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        """Deliver what is announced on ``conn`` until it is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._heard)
        # Whatever was announced while nobody listened: every subscriber looks once.
        self._subscribers.deliver(Topic)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), CHECK_SECONDS)
                continue
            # Quiet for a while: a connection that died without a word fails this.
            await conn.fetchval("SELECT 1", timeout=CHECK_SECONDS)

    def _heard(
        self,
        _conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
        _pid: int,
        _channel: str,
        payload: object,
    ) -> None:
        name, _, store = str(payload).partition(" ")
        topic = _TOPICS.get(name)
        if topic is not None and store != self._store:
            self._subscribers.deliver((topic,))

"""The SQLite store: one writer connection with group commit, a small pool of readers.

SQLite allows one writer at a time. Rather than let every request fight for the
write lock, all writes go through a single task that takes the jobs waiting in its
queue, runs each inside a savepoint of one transaction, and commits them together.
Under load, one commit (one fsync) covers many webhooks; with no load a job is
committed on its own at once. Readers use separate connections and, thanks to WAL,
never wait for the writer.

A database that cannot be opened or written at start raises ``StoreUnavailable`` naming
its path. Later, a write that cannot take the lock in time (another process holds it)
raises ``StoreBusy``, and one the file refuses (read-only, disk full, I/O error)
``StoreUnavailable``: callers retry both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from engine.clock import Clock, SystemClock
from engine.store.announcements import Subscribers, Topic
from engine.store.base import Job, Store, T, Tx
from engine.store.failures import StoreBusy, StoreUnavailable
from engine.store.sqlite.agents import SqliteAgentRepo
from engine.store.sqlite.broadcasts import SqliteBroadcastRepo
from engine.store.sqlite.callbacks import SqliteCallbackRepo
from engine.store.sqlite.campaign_work import SqliteCampaignWorkRepo
from engine.store.sqlite.consent_intents import SqliteConsentIntentRepo
from engine.store.sqlite.contacts import SqliteContactRepo
from engine.store.sqlite.conversations import SqliteConversationRepo
from engine.store.sqlite.db import Db, WriterDb
from engine.store.sqlite.desk import SqliteDeskRepo
from engine.store.sqlite.desk_work import (
    SqliteAssignmentRepo,
    SqliteDeskLogRepo,
    SqliteSavedReplyRepo,
    SqliteSearchRepo,
)
from engine.store.sqlite.flow_sessions import SqliteFlowSessionRepo
from engine.store.sqlite.inbound import SqliteInboundRepo
from engine.store.sqlite.messages import SqliteMessageRepo
from engine.store.sqlite.migrate import migrate
from engine.store.sqlite.number_leases import SqliteNumberLeaseRepo
from engine.store.sqlite.outbox import SqliteOutboxRepo
from engine.store.sqlite.sequences import SqliteSequenceRepo
from engine.store.sqlite.settings import SqliteSettingRepo
from engine.store.sqlite.templates import SqliteTemplateRepo

log = logging.getLogger(__name__)

_MAX_BATCH = 256
WATCH_SECONDS = 0.02
"""How often each process looks whether another one announced something: a read of one
counter of the database file (``PRAGMA data_version``), and of the announcements only
when it moved."""


class SqliteTx(Tx):
    def __init__(self, db: Db, clock: Clock) -> None:
        self.db = db
        self.contacts = SqliteContactRepo(db, clock)
        self.consent_intents = SqliteConsentIntentRepo(db)
        self.conversations = SqliteConversationRepo(db, clock)
        self.messages = SqliteMessageRepo(db)
        self.settings = SqliteSettingRepo(db)
        self.templates = SqliteTemplateRepo(db, clock)
        # Agents.
        self.agents = SqliteAgentRepo(db, clock)
        self.desk = SqliteDeskRepo(db, clock)
        self.assignments = SqliteAssignmentRepo(db)
        self.desk_log = SqliteDeskLogRepo(db)
        self.saved_replies = SqliteSavedReplyRepo(db)
        self.search = SqliteSearchRepo(db)
        # Bot flows.
        self.flow_sessions = SqliteFlowSessionRepo(db)
        # Inbound.
        self.inbound = SqliteInboundRepo(db)
        # Outbound.
        self.outbox = SqliteOutboxRepo(db)
        self.callbacks = SqliteCallbackRepo(db)
        # Campaigns.
        self.broadcasts = SqliteBroadcastRepo(db)
        self.sequences = SqliteSequenceRepo(db)
        self.campaign_work = SqliteCampaignWorkRepo(db)
        self.number_leases = SqliteNumberLeaseRepo(db)

    def announce(self, topic: Topic) -> None:
        self.db.announce(topic)


_Pending = tuple[Job[Any], "asyncio.Future[Any]"]


class SqliteStore(Store):
    """Open with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        path: str,
        writer: sqlite3.Connection,
        readers: list[aiosqlite.Connection],
        clock: Clock,
        watcher: aiosqlite.Connection,
        seen: dict[Topic, int],
    ) -> None:
        self.path = path
        self.clock = clock
        self._writer = writer
        self._writer_db = WriterDb(writer)
        self._write_tx = SqliteTx(self._writer_db, clock)
        self._subscribers = Subscribers()
        self._seen = seen
        self._watcher = watcher
        self._readers: asyncio.Queue[SqliteTx] = asyncio.Queue()
        self._reader_connections = readers
        for conn in readers:
            self._readers.put_nowait(SqliteTx(Db(conn), clock))
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._write_loop(), name="sqlite-writer")
        self._watching = asyncio.create_task(self._watch(), name="sqlite-announcements")
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        clock: Clock | None = None,
        readers: int = 3,
        synchronous: str = "FULL",
    ) -> SqliteStore:
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Opened once here first: aiosqlite leaves a thread behind when it cannot open.
            sqlite3.connect(path).close()
            migrator = await _connect(path, synchronous)
            try:
                await migrator.execute("PRAGMA journal_mode = WAL")
                await migrate(migrator)
            finally:
                await migrator.close()
            writer = _connect_writer(path, synchronous)
            try:
                await _check_writable(writer)
            except BaseException:
                writer.close()
                raise
        except (OSError, sqlite3.OperationalError) as error:
            raise _cannot_open(path, error) from None
        reader_connections = [await _connect(path, synchronous) for _ in range(readers)]
        for conn in reader_connections:
            await conn.execute("PRAGMA query_only = ON")
        watcher = await _connect(path, synchronous)
        await watcher.execute("PRAGMA query_only = ON")
        seen = await _announcements(watcher)
        return cls(path, writer, reader_connections, clock or SystemClock(), watcher, seen)

    async def write(self, job: Job[T]) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        tx = await self._readers.get()
        try:
            await tx.db.conn.execute("BEGIN")  # one snapshot for the whole read
            try:
                yield tx
            finally:
                await tx.db.conn.execute("COMMIT")
        finally:
            self._readers.put_nowait(tx)

    def read(self) -> AbstractAsyncContextManager[Tx]:
        return self._read()

    def subscribe(self, topic: Topic) -> asyncio.Event:
        return self._subscribers.subscribe(topic)

    async def ping(self) -> None:
        async with self.read() as tx:
            await tx.settings.get("ping")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        await self._task
        self._watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watching
        await self._watcher.close()
        self._writer.close()
        for conn in self._reader_connections:
            await conn.close()

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending is None:
                    stop = True
                    break
                batch.append(pending)
            try:
                await self._run_batch(batch)
            except Exception:  # pragma: no cover - the loop must survive anything
                log.exception("the SQLite writer failed a batch")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError("the store could not write"))
            if stop:
                return

    async def _run_batch(self, batch: list[_Pending]) -> None:
        conn = self._writer
        live = [(job, future) for job, future in batch if not future.cancelled()]
        if not live:
            return
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        announced: set[Topic] = set()
        try:
            await _begin(conn)
        except sqlite3.OperationalError as error:
            refused = self._refused(error)
            for _, future in live:
                if not future.done():
                    future.set_exception(refused)
            return
        try:
            for job, future in live:
                conn.execute("SAVEPOINT job")
                self._writer_db.announced = set()
                try:
                    result = await job(self._write_tx)
                except Exception as error:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    if isinstance(error, sqlite3.OperationalError):
                        error = self._refused(error)
                    outcomes.append((future, None, error))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((future, result, None))
                    announced |= self._writer_db.announced
            counted = _count_announcements(conn, announced)
            await asyncio.to_thread(conn.execute, "COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = error if isinstance(error, Exception) else RuntimeError("write cancelled")
            if isinstance(failure, sqlite3.OperationalError):
                failure = self._refused(failure)
            for _, future in live:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        if announced:
            self._seen.update(counted)  # the watcher need not deliver these again
            self._subscribers.deliver(announced)
        for future, result, job_error in outcomes:
            if future.done():
                continue
            if job_error is None:
                future.set_result(result)
            else:
                future.set_exception(job_error)

    def _refused(self, error: sqlite3.OperationalError) -> Exception:
        """What the database's refusal to write means to callers: wait, or it is away."""
        name = getattr(error, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return StoreBusy(f"the SQLite database {self.path} is locked by another process")
        if name.startswith(_UNAVAILABLE):
            return StoreUnavailable(f"the SQLite database {self.path} cannot be written: {error}")
        return error

    async def _watch(self) -> None:
        """Deliver what other processes announced: their commits move the counters."""
        version = None
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                rows = await self._watcher.execute_fetchall("PRAGMA data_version")
                now = next(iter(rows))[0]
                if now == version:
                    continue
                version = now
                counts = await _announcements(self._watcher)
            except Exception:  # the watch must outlive a bad moment of the file
                log.exception("could not read the announcements")
                continue
            moved = [topic for topic, seq in counts.items() if self._seen.get(topic) != seq]
            self._seen.update(counts)
            self._subscribers.deliver(moved)


def _count_announcements(conn: sqlite3.Connection, topics: set[Topic]) -> dict[Topic, int]:
    """Move the counters of ``topics`` in the transaction; their new values."""
    if not topics:
        return {}
    rows = conn.execute(
        "INSERT INTO announcements (topic, seq) SELECT value, 1 FROM json_each(?) WHERE true"
        " ON CONFLICT (topic) DO UPDATE SET seq = seq + 1 RETURNING topic, seq",
        (json.dumps(sorted(topics)),),
    ).fetchall()
    return {Topic(row[0]): int(row[1]) for row in rows}


_TOPICS = {topic.value for topic in Topic}


async def _announcements(conn: aiosqlite.Connection) -> dict[Topic, int]:
    rows = await conn.execute_fetchall("SELECT topic, seq FROM announcements")
    return {Topic(row[0]): int(row[1]) for row in rows if row[0] in _TOPICS}


async def _connect(path: str, synchronous: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA busy_timeout = 5000")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def _cannot_open(path: str, error: Exception) -> StoreUnavailable:
    where = os.path.abspath(path)
    return StoreUnavailable(f"the SQLite database {where} cannot be opened for writing: {error}")


_UNAVAILABLE = ("SQLITE_READONLY", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN")


async def _check_writable(conn: sqlite3.Connection) -> None:
    """Write nothing, but as a write does: SQLite opens a file it may not write read-only
    without a word, and refuses only the first write."""
    await _begin(conn)
    try:
        conn.execute("DELETE FROM announcements WHERE false")
    finally:
        conn.execute("ROLLBACK")


def _connect_writer(path: str, synchronous: str) -> sqlite3.Connection:
    # Used by the writer task, and by one worker thread at a time (see _begin, COMMIT).
    # No busy timeout: on the event loop's thread the writer must never wait for a lock.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    for pragma in ("busy_timeout = 0", "foreign_keys = ON", f"synchronous = {synchronous}"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


async def _begin(conn: sqlite3.Connection) -> None:
    """Take the write lock; wait for it in a worker thread if another process has it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "locked" not in str(error) and "busy" not in str(error):
            raise
        await asyncio.to_thread(_begin_waiting, conn)


def _begin_waiting(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA busy_timeout = 5000")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout = 0")

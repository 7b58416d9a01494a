"""The PostgreSQL store: a pool of connections, one serializable transaction per job.

Each write job runs in its own SERIALIZABLE transaction on a pooled connection, so
jobs run side by side and PostgreSQL refuses the ones that would not have been
correct one after another (SQLSTATE 40001, or 40P01 for a deadlock). Jobs are pure
functions of their ``tx``, so such a job is rolled back and simply run again; one
that keeps losing runs alone at last (see ``_write_once``).
Reads take a REPEATABLE READ READ ONLY transaction: one snapshot for the whole read.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from engine.clock import Clock, SystemClock
from engine.store.announcements import Subscribers, Topic
from engine.store.base import Job, Store, T, Tx
from engine.store.failures import StoreBusy, StoreUnavailable
from engine.store.postgres.agents import PgAgentRepo
from engine.store.postgres.broadcasts import PgBroadcastRepo
from engine.store.postgres.callbacks import PgCallbackRepo
from engine.store.postgres.campaign_work import PgCampaignWorkRepo
from engine.store.postgres.consent_intents import PgConsentIntentRepo
from engine.store.postgres.contacts import PgContactRepo
from engine.store.postgres.conversations import PgConversationRepo
from engine.store.postgres.db import PgDb, init_connection
from engine.store.postgres.desk import PgDeskRepo
from engine.store.postgres.desk_work import (
    PgAssignmentRepo,
    PgDeskLogRepo,
    PgSavedReplyRepo,
    PgSearchRepo,
)
from engine.store.postgres.flow_sessions import PgFlowSessionRepo
from engine.store.postgres.inbound import PgInboundRepo
from engine.store.postgres.listener import Listener, notify_sql
from engine.store.postgres.messages import PgMessageRepo
from engine.store.postgres.migrate import migrate
from engine.store.postgres.number_leases import PgNumberLeaseRepo
from engine.store.postgres.outbox import PgOutboxRepo
from engine.store.postgres.sequences import PgSequenceRepo
from engine.store.postgres.settings import PgSettingRepo
from engine.store.postgres.templates import PgTemplateRepo

log = logging.getLogger(__name__)

MAX_WRITE_TRIES = 10
ALONE_AFTER_TRIES = 3
# A fixed key, distinct from the migrations' one: "optinwri" in ASCII.
WRITERS_LOCK_KEY = 0x6F7074696E777269
CONNECT_TIMEOUT_SECONDS = 5.0
_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# What connecting raises when the server is down, starting, stopping, full or refusing us.
_UNREACHABLE = (
    OSError,  # refused, unreachable, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
)
# What a statement raises when the server went away under an open connection.
_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


class PgTx(Tx):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self.db = db
        self.contacts = PgContactRepo(db, clock)
        self.consent_intents = PgConsentIntentRepo(db)
        self.conversations = PgConversationRepo(db, clock)
        self.messages = PgMessageRepo(db)
        self.settings = PgSettingRepo(db)
        self.templates = PgTemplateRepo(db, clock)
        # Agents.
        self.agents = PgAgentRepo(db, clock)
        self.desk = PgDeskRepo(db, clock)
        self.assignments = PgAssignmentRepo(db)
        self.desk_log = PgDeskLogRepo(db)
        self.saved_replies = PgSavedReplyRepo(db)
        self.search = PgSearchRepo(db)
        # Bot flows.
        self.flow_sessions = PgFlowSessionRepo(db)
        # Inbound.
        self.inbound = PgInboundRepo(db)
        # Outbound.
        self.outbox = PgOutboxRepo(db)
        self.callbacks = PgCallbackRepo(db)
        # Campaigns.
        self.broadcasts = PgBroadcastRepo(db)
        self.sequences = PgSequenceRepo(db)
        self.campaign_work = PgCampaignWorkRepo(db)
        self.number_leases = PgNumberLeaseRepo(db)

    def announce(self, topic: Topic) -> None:
        self.db.announce(topic)


class PostgresStore(Store):
    """Open with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self, url: str, pool: asyncpg.Pool, clock: Clock, *, acquire_timeout: float
    ) -> None:
        self.url = redacted(url)
        self.clock = clock
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._subscribers = Subscribers()
        # Names this store in its NOTIFYs, so that its listener skips its own.
        self._token = secrets.token_hex(8)
        self._listener = Listener(
            url, self._subscribers, store=self._token, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        min_size: int = 1,
        max_size: int = 10,
        acquire_timeout: float = 2.0,
    ) -> PostgresStore:
        """Migrate the database, then open a pool; StoreUnavailable if it cannot be reached."""
        try:
            conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
        except _UNREACHABLE as error:
            raise _unavailable(url, error) from error
        try:
            await migrate(conn)
        finally:
            await conn.close()
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                init=init_connection,
                timeout=CONNECT_TIMEOUT_SECONDS,
            )
        except _UNREACHABLE as error:
            raise _unavailable(url, error) from error
        return cls(url, pool, clock or SystemClock(), acquire_timeout=acquire_timeout)

    async def write(self, job: Job[T]) -> T:
        for attempt in range(1, MAX_WRITE_TRIES + 1):
            try:
                return await self._write_once(job, alone=attempt > ALONE_AFTER_TRIES)
            except _RETRYABLE as error:
                if attempt == MAX_WRITE_TRIES:
                    raise StoreBusy(
                        f"a write conflicted with others {attempt} times in a row"
                    ) from error
            # Jittered and growing, so that the jobs that collided do not collide again.
            await asyncio.sleep(random.uniform(0, min(0.25, 0.002 * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_once(self, job: Job[T], *, alone: bool) -> T:
        """One try of ``job``. Every write holds the writers' lock shared; a job that kept
        losing conflicts (a large one among many small ones) holds it alone, so that it
        runs after the writes under way and beside no other: it cannot conflict again.
        The lock belongs to the session and is taken before BEGIN, so the transaction's
        snapshot is taken after the wait, not before it."""
        mode = "" if alone else "_shared"
        unlock = f"SELECT pg_advisory_unlock{mode}({WRITERS_LOCK_KEY})"
        async with self._connection() as conn:
            await conn.execute(f"SELECT pg_advisory_lock{mode}({WRITERS_LOCK_KEY})")
            unlocked = False
            try:
                await conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                try:
                    db = PgDb(conn)
                    result = await job(PgTx(db, self.clock))
                    # The announcements (sent by PostgreSQL at COMMIT, to every listening
                    # process), the COMMIT and the unlock: one round trip. A COMMIT that
                    # fails stops the string there.
                    notices = notify_sql(db.announced, store=self._token)
                    await conn.execute(f"{notices}COMMIT; {unlock}")
                    unlocked = True
                except BaseException:
                    await _rollback(conn)
                    raise
            finally:
                if not unlocked:
                    await _quietly(conn, unlock)
        # This process's subscribers need not wait for the round trip of the NOTIFY.
        self._subscribers.deliver(db.announced)
        return result

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        async with (
            self._connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PgTx(PgDb(conn), self.clock)

    def read(self) -> AbstractAsyncContextManager[Tx]:
        return self._read()

    def subscribe(self, topic: Topic) -> asyncio.Event:
        return self._subscribers.subscribe(topic)

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._listener.close()
        await self._pool.close()  # waits for the jobs that hold a connection

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; StoreBusy/StoreUnavailable instead of the driver's errors."""
        if self._closed:
            raise RuntimeError("the store is closed")
        conn = await self._acquire()
        try:
            yield conn
        except Exception as error:
            if _broken(conn, error):
                _terminate(conn)  # never hand a broken connection back out
                raise _unavailable(self.url, error) from error
            raise
        finally:
            await self._release(conn)

    async def _acquire(self) -> asyncpg.Connection:
        try:
            return await self._pool.acquire(timeout=self._acquire_timeout)
        except TimeoutError as error:
            # Mostly the wait for a connection in use; rarely a new connection being slow.
            raise StoreBusy(
                f"no database connection was free within {self._acquire_timeout:g} s"
            ) from error
        except _UNREACHABLE as error:
            raise _unavailable(self.url, error) from error

    async def _release(self, conn: asyncpg.Connection) -> None:
        try:
            await self._pool.release(conn)
        except Exception:
            # The pool closes a connection it could not reset and opens a new one later.
            log.warning("dropped a database connection that could not be reset", exc_info=True)


async def _rollback(conn: asyncpg.Connection) -> None:
    await _quietly(conn, "ROLLBACK")


async def _quietly(conn: asyncpg.Connection, statement: str) -> None:
    """Run a clean-up statement; a connection it fails on is in an unknown state."""
    if _closed(conn):
        return
    try:
        await conn.execute(statement)
    except Exception:
        _terminate(conn)  # the pool opens another in its place


def _closed(conn: asyncpg.Connection) -> bool:
    """Whether ``conn`` is closed; a pooled connection that the server closed may have
    been detached from its pool already, which then refuses every call on it."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


def _terminate(conn: asyncpg.Connection) -> None:
    if not _closed(conn):
        conn.terminate()


def _broken(conn: asyncpg.Connection, error: Exception) -> bool:
    """Whether ``error`` says the connection is lost (the server went away under it)."""
    if isinstance(error, _LOST):
        return True
    # The server's goodbye can reach an idle connection just as a statement starts: the
    # driver then fails on its own state before it has noticed the connection closed.
    if isinstance(error, asyncpg.InternalClientError):
        return True
    return isinstance(error, OSError | asyncpg.InterfaceError) and _closed(conn)


def _unavailable(url: str, error: BaseException) -> StoreUnavailable:
    reason = str(error) or type(error).__name__
    return StoreUnavailable(f"the database at {redacted(url)} cannot be reached: {reason}")


def redacted(url: str) -> str:
    """``url`` without its password, fit for messages and logs.

    >>> redacted("postgresql://ann:s3cret@db.example:5432/app?sslmode=require&password=x")
    'postgresql://ann@db.example:5432/app?sslmode=require'
    >>> redacted("postgres://127.0.0.1/app")
    'postgres://127.0.0.1/app'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{hosts}"
    query = "&".join(
        item for item in parts.query.split("&") if item and not item.startswith("password=")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

"""Live updates for open console pages: the desk's change feed, pushed as server-sent
events.

One :class:`LiveHub` per web process follows the store's desk change feed (rows the
database writes by trigger for every message added or moved to a new status, every
conversation that changes hands or is resolved or reopened, every entry agents add to
a conversation's private timeline, every agent who reads one) and wakes on the store's
``desk`` announcement, which crosses processes: a message a worker stores reaches the
pages this process serves. Each change becomes one small event, built and serialised
once and handed to every watcher (``read`` events only to the agent who read):

- ``message``: ``{wa_id, contact_id, added, window_open_until, message}``, and for a
  customer's message just added ``number``: the business number the conversation is on
  now (shown only when the install has several; None otherwise or before any);
- ``conversation``: ``{wa_id, contact_id, owner, agent, waiting, resolved,
  window_open_until, number}``;
- ``entry``: ``{wa_id, contact_id, entry}``, the entry (a private note, an assignment,
  resolved, reopened) as the conversation page's timeline takes it (with its id and
  HTML);
- ``read``: ``{wa_id, contact_id, agent}``.

An event's id is the change's number. A page that reconnects sends it back
(``Last-Event-ID``, or ``?after=`` on its first connection: the number its HTML was
rendered at) and gets what it missed from the hub's recent events, or ``resync`` when
those are gone (the page then reloads its data). The marketers' console can watch the
same hub: :meth:`LiveHub.watch` takes any filter on the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from jinja2 import Environment

from engine.agents.view import message_json, message_views
from engine.agents.wire import json_time
from engine.clock import Clock
from engine.models.message import Direction
from engine.store import Store, Tx
from engine.store.announcements import Topic
from engine.store.desk import DeskChange, SummaryFilter
from engine.web.console.business_numbers import (
    NumberLabels,
    conversation_number,
    label_of,
    number_labels,
)
from engine.web.console.desk_work import timeline_entry
from engine.web.console.render import TEMPLATES
from engine.web.event_stream import comment, frame, open_stream, retry_after

log = logging.getLogger(__name__)

RECENT_EVENTS = 5000
"""Events kept for pages that reconnect (a minute or more of a busy desk)."""
BATCH = 500
FALLBACK_SECONDS = 5.0
"""Looked at even without an announcement: one lost is late, never lost."""
GAP_SECONDS = 10.0
"""How long a missing change number is awaited (a slower transaction committing it)
before it counts as rolled back (PostgreSQL takes numbers before commit)."""
KEEP_CHANGES = timedelta(hours=1)
PRUNE_SECONDS = 600.0
KEEPALIVE_SECONDS = 15.0
WATCHER_QUEUE = 1000
"""Events waiting for one slow page; past it the page is told to resync."""


@dataclass(frozen=True, slots=True)
class LiveEvent:
    seq: int
    name: str
    data: dict[str, Any]
    agent: str | None = None
    """Only this agent's pages get it (their own read state)."""
    wire: bytes = b""

    @classmethod
    def of(cls, seq: int, name: str, data: dict[str, Any], agent: str | None = None) -> LiveEvent:
        return cls(seq, name, data, agent, frame(data, event=name, event_id=seq))

    def for_agent(self, email: str) -> bool:
        return self.agent is None or self.agent == email


RESYNC = frame({}, event="resync")


@dataclass(eq=False)
class Watcher:
    wants: Callable[[LiveEvent], bool]
    after: int = 0
    """The page is up to date to this change (rendered by any web process: the
    numbers are the database's)."""
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(WATCHER_QUEUE))

    def offer(self, event: LiveEvent) -> None:
        if event.seq <= self.after or not self.wants(event):
            return
        try:
            self.queue.put_nowait(event.wire)
        except asyncio.QueueFull:
            # Too slow to keep up: drop what waits and ask the page to load afresh.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class LiveHub:
    """Start with :meth:`start`, stop with :meth:`close`."""

    def __init__(self, store: Store, clock: Clock, templates: Environment) -> None:
        self._store = store
        self._clock = clock
        self._templates = templates
        self._cursor = 0
        self._gaps: dict[int, float] = {}
        self._recent: deque[LiveEvent] = deque(maxlen=RECENT_EVENTS)
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = store.subscribe(Topic.DESK)
        self._stopping = False
        self.update_seconds: list[float] = []
        """CPU seconds spent on each round of changes (the bench reads it)."""

    @property
    def cursor(self) -> int:
        """The newest change turned into events: a page rendered now is up to date to it."""
        return self._cursor

    async def start(self) -> None:
        async with self._store.read() as tx:
            self._cursor = await tx.desk.last_change()
        self._task = asyncio.create_task(self._run(), name="console-live")

    async def close(self) -> None:
        # A flag as well as the cancel: a cancel that lands as a wait ends can be lost.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watcher in list(self._watchers):
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(None)

    def watch(self, wants: Callable[[LiveEvent], bool], *, after: int | None) -> Watcher:
        """A new watcher, given first what it missed after change ``after``."""
        watcher = Watcher(wants, after or 0)
        if after is not None and after < self._cursor:
            oldest = self._recent[0].seq if self._recent else self._cursor + 1
            if after + 1 < oldest:  # what came between is no longer known
                watcher.queue.put_nowait(RESYNC)
            else:
                for event in self._recent:
                    if event.seq > after:
                        watcher.offer(event)
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    async def _run(self) -> None:
        pruned = time.monotonic()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FALLBACK_SECONDS):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            try:
                while await self.round():
                    pass
                if time.monotonic() - pruned > PRUNE_SECONDS:
                    pruned = time.monotonic()
                    await self._prune(self._clock.now() - KEEP_CHANGES)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is away: the next wake-up tries again
                log.exception("the console's live updates could not read the desk's changes")
                await asyncio.sleep(1.0)

    async def _prune(self, before: datetime) -> None:
        await self._store.write(lambda tx: tx.desk.prune_changes(before))

    async def round(self) -> bool:
        """Turn the changes committed since the last round into events; whether a full
        batch came (more may wait)."""
        started = time.process_time()
        if not self._watchers:
            # Nobody is watching (a campaign's traffic at night): keep up with the feed
            # without building events; a page that comes back later resyncs.
            async with self._store.read() as tx:
                self._cursor = await tx.desk.last_change()
            self._recent.clear()
            self._gaps.clear()
            return False
        async with self._store.read() as tx:
            changes = await tx.desk.changes_after(self._cursor, limit=BATCH)
            late = await tx.desk.changes_among(list(self._gaps))
            if not changes and not late:
                self._forget_old_gaps()
                return False
            events = await self._events(tx, [*late, *changes])
        self._advance(changes, late)
        for event in events:
            self._recent.append(event)
            for watcher in list(self._watchers):
                watcher.offer(event)
        self.update_seconds.append(time.process_time() - started)
        del self.update_seconds[:-10_000]
        return len(changes) == BATCH

    def _advance(self, changes: list[DeskChange], late: list[DeskChange]) -> None:
        now = time.monotonic()
        for change in late:
            self._gaps.pop(change.seq, None)
        for change in changes:
            for missing in range(self._cursor + 1, change.seq):
                self._gaps[missing] = now
            self._cursor = change.seq
        self._forget_old_gaps()

    def _forget_old_gaps(self) -> None:
        now = time.monotonic()
        for seq, since in list(self._gaps.items()):
            if now - since > GAP_SECONDS:
                del self._gaps[seq]

    async def _events(self, tx: Tx, changes: list[DeskChange]) -> list[LiveEvent]:
        """One event per message, conversation, desk entry or read in ``changes`` (the
        latest state of each, at the number of its last change)."""
        messages: dict[str, int] = {}
        added: set[str] = set()
        conversations: dict[int, int] = {}
        entries: dict[int, DeskChange] = {}
        reads: dict[tuple[int, str], int] = {}
        for change in changes:
            if change.message_id is not None:
                messages[change.message_id] = change.seq
                if change.added:
                    added.add(change.message_id)
            elif change.entry_id is not None:
                entries[change.entry_id] = change
            elif change.agent is not None:
                reads[(change.contact_id, change.agent)] = change.seq
            else:
                conversations[change.contact_id] = change.seq
        events: list[LiveEvent] = []
        windows: dict[int, str | None] = {}
        addresses: dict[int, str] = {}
        labels: NumberLabels | None = None
        numbers: dict[int, str | None] = {}

        async def number(contact_id: int, phone_number_id: str | None = None) -> str | None:
            """The business number the conversation is on now, as the lists label it (a
            customer's message may have moved it to another number)."""
            nonlocal labels
            if labels is None:
                labels = await number_labels(tx)
            if contact_id not in numbers:
                numbers[contact_id] = (
                    await conversation_number(tx, labels, contact_id)
                    if phone_number_id is None
                    else label_of(labels, phone_number_id)
                )
            return numbers[contact_id]

        async def window(contact_id: int) -> str | None:
            if contact_id not in windows:
                conversation = await tx.conversations.get(contact_id)
                windows[contact_id] = json_time(conversation.window_open_until)
            return windows[contact_id]

        async def address(contact_id: int) -> str:
            if contact_id not in addresses:
                contact = await tx.contacts.get_by_id(contact_id)
                addresses[contact_id] = "" if contact is None else contact.address
            return addresses[contact_id]

        for view in await message_views(tx, list(messages)):
            message = view.message
            data: dict[str, Any] = {
                "wa_id": message.contact,
                "contact_id": message.contact_id,
                "added": message.id in added,
                "window_open_until": await window(message.contact_id),
                "message": message_json(view),
            }
            if message.id in added and message.direction is Direction.INBOUND:
                data["number"] = await number(message.contact_id)
            events.append(LiveEvent.of(messages[message.id], "message", data))
        for contact_id, seq in conversations.items():
            rows = await tx.desk.summaries(SummaryFilter(contact_id=contact_id, limit=1))
            if not rows:
                continue
            summary = rows[0]
            assignment = await tx.assignments.get(contact_id)
            events.append(
                LiveEvent.of(
                    seq,
                    "conversation",
                    {
                        "wa_id": summary.address,
                        "contact_id": contact_id,
                        "owner": summary.owner.value,
                        "agent": summary.agent,
                        "waiting": summary.owner.value == "agent" and summary.agent is None,
                        "resolved": assignment.resolved,
                        "window_open_until": await window(contact_id),
                        "number": await number(contact_id, summary.phone_number_id),
                    },
                )
            )
        if entries:
            names = {agent.email: agent.name for agent in await tx.agents.all()}
            for entry_id, entry in (await tx.desk_log.entries_by_id(list(entries))).items():
                contact_id = entries[entry_id].contact_id
                events.append(
                    LiveEvent.of(
                        entries[entry_id].seq,
                        "entry",
                        {
                            "wa_id": await address(contact_id),
                            "contact_id": contact_id,
                            "entry": timeline_entry(self._templates, entry, names),
                        },
                    )
                )
        for (contact_id, agent), seq in reads.items():
            events.append(
                LiveEvent.of(
                    seq,
                    "read",
                    {"wa_id": await address(contact_id), "contact_id": contact_id, "agent": agent},
                    agent=agent,
                )
            )
        events.sort(key=lambda event: event.seq)
        return events


LIVE_HUB = web.AppKey("console_live_hub", LiveHub)


async def hub_lifetime(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the hub for the app's life (after the store is open)."""
    from engine.web.keys import CLOCK, STORE

    hub = LiveHub(app[STORE], app[CLOCK], app[TEMPLATES])
    await hub.start()
    app[LIVE_HUB] = hub
    try:
        yield
    finally:
        await hub.close()


async def end_streams(app: web.Application) -> None:
    """on_shutdown: open event streams end, so the server need not wait for them."""
    hub = app.get(LIVE_HUB)
    if hub is not None:
        await hub.close()


def last_event_id(request: web.Request) -> int | None:
    given = request.headers.get("Last-Event-ID") or request.query.get("after")
    if given is None or not given.isdigit():
        return None
    return int(given)


async def stream(
    request: web.Request, wants: Callable[[LiveEvent], bool], headers: dict[str, str]
) -> web.StreamResponse:
    """Serve the hub's events that ``wants`` takes as ``text/event-stream`` until the
    page goes away or the server stops."""
    hub = request.app[LIVE_HUB]
    response = await open_stream(request, headers)
    watcher = hub.watch(wants, after=last_event_id(request))
    try:
        await response.write(retry_after(2000) + comment("live"))
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    wire = await watcher.queue.get()
            except TimeoutError:
                wire = comment("keepalive")
            if wire is None:
                break
            await response.write(wire)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unwatch(watcher)
    return response

"""Live progress of broadcasts as server-sent events.

The page opens ``/console/api/live/broadcasts`` (or ``.../{id}`` for one broadcast) and
gets ``data: {json}`` each time the progress it shows changes. What wakes a stream is
the store's announcements (:meth:`engine.store.Store.subscribe`): messages queued,
statuses changed, campaign work; on PostgreSQL they cross processes, so a page served
by one web process follows messages another worker sends. One subscription per topic
serves every open page of the process (:class:`Wakeups`); a stream also looks now and
then, as every part that waits for announcements does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from engine.campaigns import broadcast_control as control
from engine.campaigns.refusals import CampaignRefusal
from engine.store import Store
from engine.store.announcements import Topic
from engine.web.console.marketing.broadcasts import progress_json
from engine.web.event_stream import comment, frame, open_stream
from engine.web.keys import STORE

routes = web.RouteTableDef()

TOPICS = (Topic.OUTBOX, Topic.CALLBACKS, Topic.CAMPAIGNS)
LOOK_EVERY_SECONDS = 5.0
"""A stream looks even without an announcement this often (and says it is alive)."""
COALESCE_SECONDS = 0.2
"""At most one update per stream this often, however many statuses come in."""
LIST_SIZE = 100


class Wakeups:
    """The store's announcements of ``TOPICS``, fanned out to the open streams."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._listeners: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None

    def listen(self) -> asyncio.Event:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._relay(), name="console-live-wakeups")
        event = asyncio.Event()
        self._listeners.add(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        self._listeners.discard(event)

    async def _relay(self) -> None:
        announced = [self._store.subscribe(topic) for topic in TOPICS]
        while True:
            waits = [asyncio.create_task(event.wait()) for event in announced]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            for event in announced:
                event.clear()
            for listener in self._listeners:
                listener.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


WAKEUPS = web.AppKey("console_live_wakeups", Wakeups)


def setup_live(app: web.Application) -> None:
    async def start(app: web.Application) -> None:
        app[WAKEUPS] = Wakeups(app[STORE])

    async def stop(app: web.Application) -> None:
        if WAKEUPS in app:
            await app[WAKEUPS].close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


async def event_stream(
    request: web.Request, snapshot: Callable[[], Awaitable[Any]]
) -> web.StreamResponse:
    """Send ``snapshot()`` now and whenever it changes, until the page goes away."""
    response = await open_stream(request)
    wakeups = request.app[WAKEUPS]
    woken = wakeups.listen()
    last: bytes | None = None
    try:
        while True:
            woken.clear()
            data = frame(await snapshot())
            if data != last:
                await response.write(data)
                last = data
            try:
                await asyncio.wait_for(woken.wait(), LOOK_EVERY_SECONDS)
            except TimeoutError:
                await response.write(comment("still here"))
            await asyncio.sleep(COALESCE_SECONDS)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        wakeups.forget(woken)
    return response


@routes.get("/console/api/live/broadcasts")
async def live_list(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]

    async def snapshot() -> Any:
        found = await control.newest_broadcasts(store, before=None, limit=LIST_SIZE)
        rows = []
        for broadcast in found:
            _, counts = await control.find_broadcast(store, broadcast.id)
            rows.append(progress_json(request, broadcast, counts))
        return {"broadcasts": rows}

    return await event_stream(request, snapshot)


@routes.get("/console/api/live/broadcasts/{id}")
async def live_one(request: web.Request) -> web.StreamResponse:
    store, broadcast_id = request.app[STORE], request.match_info["id"]
    try:
        await control.find_broadcast(store, broadcast_id)
    except CampaignRefusal as refusal:
        raise web.HTTPNotFound(text=refusal.message) from None

    async def snapshot() -> Any:
        return {
            "broadcasts": [
                progress_json(request, *await control.find_broadcast(store, broadcast_id))
            ]
        }

    return await event_stream(request, snapshot)

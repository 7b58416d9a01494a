"""Announcements: a committed write tells the parts that wait for work that some came.

A job calls ``tx.announce(Topic.OUTBOX)`` next to the write that makes the work (a queued
message, a stored hand-off, ...). Once the transaction commits, and only then, every
subscriber of that topic is woken, in this process and in the others on the same
database; a job that raises announces nothing. Parts still poll now and then: an
announcement is a wake-up, never the record of what is to be done (the rows are).

How an announcement crosses processes is the backend's business: the SQLite store
counts announcements in a table that every process watches; PostgreSQL sends ``NOTIFY``
inside the transaction (delivered at commit) and ``LISTEN``\\ s on one connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from enum import StrEnum


class Topic(StrEnum):
    OUTBOX = "outbox"
    """Outbound messages were queued: the sender."""
    INBOUND = "inbound"
    """Inbound messages were stored for the conversation handler: the dispatcher."""
    CAMPAIGNS = "campaigns"
    """Campaign work was scheduled or changed: the campaign worker."""
    CALLBACKS = "callbacks"
    """Messages changed status (integration callbacks may be due): the callback dispatcher."""
    WAKEUPS = "wakeups"
    """Flow wake-ups were scheduled: the flow wake-up loop."""
    DESK = "desk"
    """The desk changed (a message added or moved, a conversation changed hands, an agent
    read one): the console's live updates. Announced by the database itself (triggers),
    so every writer is covered."""


class Subscribers:
    """The events of one process's subscribers, by topic."""

    def __init__(self) -> None:
        self._events: dict[Topic, list[asyncio.Event]] = {topic: [] for topic in Topic}

    def subscribe(self, topic: Topic) -> asyncio.Event:
        event = asyncio.Event()
        self._events[topic].append(event)
        return event

    def unsubscribe(self, topic: Topic, event: asyncio.Event) -> None:
        if event in self._events[topic]:
            self._events[topic].remove(event)

    def deliver(self, topics: Iterable[Topic]) -> None:
        for topic in topics:
            for event in self._events[topic]:
                event.set()

"""A conversation as agents see it: contact, owner, window, notices, messages, events.

The REST API (``GET /api/v1/conversations/{wa_id}``) and the console render the
same :class:`ConversationView`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.agents.compose import compose_notices
from engine.agents.wire import json_time
from engine.models.agent import Agent, ComposeRecord, ConversationEvent, ConversationSummary
from engine.models.contact import Contact
from engine.models.conversation import Conversation, Owner
from engine.models.message import Message
from engine.send_rules import Notice
from engine.store import Tx
from engine.store.flow_sessions import Handoff
from engine.store.messages import MessageFilter

RECENT_MESSAGES = 200
HISTORY_PAGE = 50
"""Messages the console loads at a time, going back ("load earlier")."""


@dataclass(frozen=True, slots=True)
class MessageView:
    message: Message
    record: ComposeRecord | None

    @property
    def at(self) -> datetime:
        """When it happened: an inbound message at the customer's own timestamp (Meta's
        ``timestamp``), so one delivered late sits where it was written."""
        return sent_at(self.message)


def sent_at(message: Message) -> datetime:
    payload = message.payload or {}
    stamp = payload.get("timestamp") if message.direction.value == "inbound" else None
    if isinstance(stamp, str) and stamp.isdigit():
        return datetime.fromtimestamp(int(stamp), tz=message.created_at.tzinfo or UTC)
    return message.created_at


@dataclass(frozen=True, slots=True)
class Window:
    """The 24-hour customer-service window, as a banner says it."""

    open: bool
    until: datetime | None
    text: str


@dataclass(frozen=True, slots=True)
class ConversationView:
    contact: Contact
    conversation: Conversation
    owner_agent: Agent | None
    notices: tuple[Notice, ...]
    window: Window
    messages: list[MessageView]
    events: list[ConversationEvent]
    handoff: Handoff | None
    """The bot flow's hand-off (queue and note) that brought it to the agents."""


def describe_span(span: timedelta) -> str:
    """A duration the way people say it.

    >>> describe_span(timedelta(hours=3, minutes=12, seconds=40))
    '3 h 12 min'
    >>> describe_span(timedelta(days=2, hours=5))
    '2 days'
    >>> describe_span(timedelta(seconds=20))
    'less than a minute'
    """
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def window_of(conversation: Conversation, now: datetime) -> Window:
    until = conversation.window_open_until
    if until is None:
        return Window(False, None, "The customer has not written yet: only templates can be sent.")
    if conversation.window_open(now):
        return Window(
            True,
            until,
            f"The 24-hour window is open for {describe_span(until - now)} more: "
            "free text can be sent.",
        )
    return Window(
        False,
        until,
        f"The 24-hour window closed {describe_span(now - until)} ago: "
        "only templates can be sent until the customer writes again.",
    )


async def history_page(
    tx: Tx, contact: Contact, *, before: str | None, limit: int = HISTORY_PAGE
) -> list[MessageView]:
    """The ``limit`` messages stored before message ``before`` (the latest ones when
    None), oldest first: keyset paging on the time-ordered ids, at any length."""
    messages = await tx.messages.find(
        MessageFilter(contact_id=contact.id, before_id=before or "~", limit=limit)
    )
    records = await tx.desk.compose_records([m.id for m in messages])
    return [MessageView(m, records.get(m.id)) for m in messages]


async def message_views(tx: Tx, message_ids: list[str]) -> list[MessageView]:
    found = [m for m in [await tx.messages.get(i) for i in message_ids] if m is not None]
    records = await tx.desk.compose_records([m.id for m in found])
    return [MessageView(m, records.get(m.id)) for m in found]


async def load_view(
    tx: Tx, contact: Contact, *, now: datetime, limit: int = RECENT_MESSAGES
) -> ConversationView:
    conversation = await tx.conversations.get(contact.id)
    cursor = await tx.desk.recent_cursor(contact.id, keep=limit)
    messages = await tx.messages.find(
        MessageFilter(contact_id=contact.id, after_id=cursor, limit=limit)
    )
    records = await tx.desk.compose_records([m.id for m in messages])
    owner_agent = None
    if conversation.owner is Owner.AGENT and conversation.agent is not None:
        owner_agent = await tx.agents.get(conversation.agent)
    return ConversationView(
        contact=contact,
        conversation=conversation,
        owner_agent=owner_agent,
        notices=await compose_notices(tx, contact, now=now),
        window=window_of(conversation, now),
        messages=[MessageView(m, records.get(m.id)) for m in messages],
        events=await tx.desk.events(contact.id),
        handoff=(
            await tx.flow_sessions.last_handoff(contact.id)
            if conversation.owner is Owner.AGENT
            else None
        ),
    )


def notice_json(notice: Notice) -> dict[str, str]:
    return {"code": notice.code, "message": notice.message}


def message_json(view: MessageView) -> dict[str, Any]:
    data = view.message.model_dump(mode="json", exclude={"payload", "history"})
    data["statuses"] = [change.model_dump(mode="json") for change in view.message.history]
    data["at"] = json_time(view.at)
    record = view.record
    data["agent"] = None if record is None else record.agent
    data["confirmed_opted_out"] = (
        None
        if record is None or record.confirmed_opted_out is None
        else record.confirmed_opted_out.model_dump(mode="json")
    )
    return data


def view_json(view: ConversationView) -> dict[str, Any]:
    conversation = view.conversation
    return {
        "contact": view.contact.model_dump(mode="json"),
        "owner": conversation.owner.value,
        "agent": conversation.agent,
        "agent_name": None if view.owner_agent is None else view.owner_agent.name,
        "waiting": conversation.owner is Owner.AGENT and conversation.agent is None,
        "window_open_until": json_time(view.window.until),
        "window_open": view.window.open,
        "notices": [notice_json(n) for n in view.notices],
        "messages": [message_json(m) for m in view.messages],
        "events": [event.model_dump(mode="json") for event in view.events],
        "handoff": None if view.handoff is None else handoff_json(view.handoff),
    }


def handoff_json(handoff: Handoff) -> dict[str, Any]:
    return {
        "flow": handoff.flow_id,
        "queue": handoff.queue,
        "note": handoff.note,
        "at": json_time(handoff.at),
    }


def conversation_json(contact: Contact, conversation: Conversation) -> dict[str, Any]:
    return {
        "wa_id": contact.address,
        "owner": conversation.owner.value,
        "agent": conversation.agent,
        "window_open_until": json_time(conversation.window_open_until),
    }


def summary_json(summary: ConversationSummary) -> dict[str, Any]:
    data = summary.model_dump(mode="json", exclude={"contact_id", "address"})
    data["wa_id"] = summary.address
    data["waiting"] = summary.owner is Owner.AGENT and summary.agent is None
    return data

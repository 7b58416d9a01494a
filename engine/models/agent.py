"""Agents (the people who answer customers in the console) and the desk they work at."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from engine.models.conversation import Owner


class AgentRole(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"  # may also release conversations other agents own
    MARKETER = "marketer"  # broadcasts, sequences, contacts and reports; no conversations


class Agent(BaseModel):
    """An agent account. The password hash never leaves the store's credentials call."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    email: str = Field(description="lower-case; names the agent everywhere (owner, author)")
    role: AgentRole
    created_at: datetime


class EventKind(StrEnum):
    TAKEOVER = "takeover"
    RELEASE = "release"


class ConversationEvent(BaseModel):
    """A change of hands: an agent took the conversation over, or gave it back to the bot."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    agent: str | None = None
    flow: str | None = Field(default=None, description="release: the flow asked to restart")
    at: datetime


class Confirmation(BaseModel):
    """An agent's confirmation to send a MARKETING template to a contact who opted out."""

    model_config = ConfigDict(frozen=True)

    by: str
    at: datetime


class ComposeRecord(BaseModel):
    """What the compose box knows about an outbound message it recorded."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    agent: str
    confirmed_opted_out: Confirmation | None = None
    idempotency_key: str | None = None
    """The key the agent's one intent to send came with: a repeat finds this record."""


class ConversationSummary(BaseModel):
    """One row of the agents' conversation list."""

    model_config = ConfigDict(frozen=True)

    contact_id: int
    address: str
    wa_id: str | None
    name: str | None
    marketing_opt_in: bool
    owner: Owner
    agent: str | None
    last_inbound_at: datetime | None
    last_message_at: datetime | None
    preview: str | None = Field(description="the last message's text")
    unread: int = Field(description="inbound messages since an agent last read it")
    phone_number_id: str | None = Field(
        default=None,
        description="the business number the customer last wrote to, which replies go out"
        " from (None: not yet written to a registered number)",
    )

"""The agents' own record of a conversation: private notes, assignments and whether it
is resolved; saved replies; and what a search finds."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from engine.models.message import Direction


class EntryKind(StrEnum):
    NOTE = "note"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"
    REOPENED = "reopened"


class DeskEntry(BaseModel):
    """A line of the timeline only agents see; nothing of it reaches the customer."""

    model_config = ConfigDict(frozen=True)

    id: int | None = Field(
        default=None, description="the entry's number once stored (later entries, higher)"
    )
    kind: EntryKind
    author: str = Field(description="the agent (email) who wrote or did it")
    assignee: str | None = Field(default=None, description="assigned: the agent it went to")
    text: str | None = Field(default=None, description="the note, or the assignment's note")
    at: datetime


class Assignment(BaseModel):
    """Who has a conversation and whether it is resolved."""

    model_config = ConfigDict(frozen=True)

    agent: str | None
    resolved_at: datetime | None = Field(
        default=None, description="set while resolved; a new customer message reopens it"
    )

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None


class SavedReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    shortcut: str
    text: str
    updated_by: str
    updated_at: datetime


class ContactHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    contact_id: int
    address: str
    wa_id: str | None
    user_id: str | None
    name: str | None
    tags: tuple[str, ...] = ()


class MessageHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    contact_id: int
    address: str
    name: str | None
    direction: Direction
    text: str
    created_at: datetime

"""Who sees which part of the console: agents the conversations, marketers the
broadcasts, sequences, contacts and reports, admins everything. The navigation shows a
person the sections their role opens, and the middleware refuses the others."""

from __future__ import annotations

from dataclasses import dataclass

from engine.models.agent import AgentRole

CONVERSATIONS = "conversations"
DESK_PAGES = frozenset({"search", "saved-replies", "team", "media"})
"""The agents' desk beyond the conversations themselves: theirs, like the conversations."""
MARKETING_SECTIONS = ("contacts", "broadcasts", "sequences", "reports")


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    label: str
    href: str


SECTIONS = (
    Section(CONVERSATIONS, "Conversations", "/console"),
    Section("contacts", "Contacts", "/console/contacts"),
    Section("broadcasts", "Broadcasts", "/console/broadcasts"),
    Section("sequences", "Sequences", "/console/sequences"),
    Section("reports", "Reports", "/console/reports"),
)

_OPENS: dict[AgentRole, frozenset[str]] = {
    AgentRole.AGENT: frozenset({CONVERSATIONS}),
    AgentRole.MARKETER: frozenset(MARKETING_SECTIONS),
    AgentRole.ADMIN: frozenset({CONVERSATIONS, *MARKETING_SECTIONS}),
}


def sections_for(role: AgentRole) -> list[Section]:
    return [section for section in SECTIONS if section.name in _OPENS[role]]


def home_of(role: AgentRole) -> str:
    """Where ``/console`` takes someone: a marketer to the broadcasts."""
    return "/console" if CONVERSATIONS in _OPENS[role] else "/console/broadcasts"


def section_of(path: str) -> str | None:
    """The section a console path belongs to; None for what every role may use: sign-in,
    sign-out, assets, and a contact's opt-in switch (agents' and marketers' alike).

    >>> section_of("/console/conversations/16505551234"), section_of("/console/api/live/broadcasts")
    ('conversations', 'broadcasts')
    >>> section_of("/console/api/contacts/16505551234/opt-in"), section_of("/console/logout")
    (None, None)
    >>> section_of("/console/contacts/16505551234"), section_of("/console/reports/messages.csv")
    ('contacts', 'reports')
    >>> section_of("/console/team"), section_of("/console/api/saved-replies")
    ('conversations', 'conversations')
    """
    api = path.startswith("/console/api/")
    parts = path.removeprefix("/console").removeprefix("/api").strip("/").split("/")
    first = parts[0]
    if first in ("", CONVERSATIONS) or first in DESK_PAGES:
        return CONVERSATIONS
    if api and first == "contacts":
        return None
    if api and first == "live" and len(parts) > 1:
        first = parts[1]
    return first if first in MARKETING_SECTIONS else None


def may_open(role: AgentRole, path: str) -> bool:
    section = section_of(path)
    return section is None or section in _OPENS[role]

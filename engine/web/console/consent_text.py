"""The consent history as people read it: where each change came from, in words
("customer sent STOP", "agent Ann Lee", "CSV import"), never message ids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.agents.wire import json_time
from engine.models.contact import ConsentEvent, ConsentSource

_SAID = re.compile(r"sent '(?P<said>[^']*)'|sent \"(?P<said2>[^\"]*)\"")
_CODE = re.compile(r"error (\d+)")


def consent_source(event: ConsentEvent, agent_names: Mapping[str, str]) -> str:
    """
    >>> from datetime import UTC, datetime
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> stop = ConsentEvent(marketing_opt_in=False, source=ConsentSource.KEYWORD, at=at,
    ...     note="customer sent 'STOP' (wamid.HBgL)")
    >>> consent_source(stop, {})
    'customer sent STOP'
    >>> ann = ConsentEvent(marketing_opt_in=True, source=ConsentSource.AGENT, at=at,
    ...     actor="ann@example.com")
    >>> consent_source(ann, {"ann@example.com": "Ann Lee"})
    'agent Ann Lee'
    >>> meta = ConsentEvent(marketing_opt_in=False, source=ConsentSource.WHATSAPP_ERROR,
    ...     at=at, note="error 131050: the customer stopped marketing (message wamid.X)")
    >>> consent_source(meta, {})
    'Meta: marketing stopped (131050)'
    """
    note = event.note or ""
    match event.source:
        case ConsentSource.KEYWORD | ConsentSource.BUTTON:
            said = _SAID.search(note)
            words = (said.group("said") or said.group("said2")) if said else None
            verb = "sent" if event.source is ConsentSource.KEYWORD else "tapped"
            return f"customer {verb} {words}" if words else f"customer {verb} a stop/start word"
        case ConsentSource.AGENT:
            actor = event.actor or ""
            return f"agent {agent_names.get(actor, actor)}".strip()
        case ConsentSource.IMPORT:
            return "CSV import"
        case ConsentSource.API:
            return "API"
        case ConsentSource.INBOUND:
            return "first message from the customer"
        case ConsentSource.BOT:
            return f"bot flow {event.actor}" if event.actor else "bot flow"
        case ConsentSource.WHATSAPP_ERROR:
            code = _CODE.search(note)
            return f"Meta: marketing stopped ({code.group(1) if code else 'error'})"
        case ConsentSource.WHATSAPP_PREFERENCES:
            return "Meta: customer's marketing preference in WhatsApp"
    return str(event.source.value)


def consent_note(event: ConsentEvent) -> str | None:
    """The note a person wrote (an agent's, an API client's); generated notes, which
    carry message ids, are said by :func:`consent_source` instead."""
    if event.source in (ConsentSource.AGENT, ConsentSource.API) and event.note:
        if event.note.startswith("created by "):
            return None
        return event.note
    return None


def consent_json(event: ConsentEvent, agent_names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "marketing_opt_in": event.marketing_opt_in,
        "source": consent_source(event, agent_names),
        "note": consent_note(event),
        "at": json_time(event.at),
    }

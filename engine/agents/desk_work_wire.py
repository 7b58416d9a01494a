"""The desk's assignment, notes, saved replies and search hits as JSON (REST and the
console's script)."""

from __future__ import annotations

from typing import Any

from engine.agents.assignment import Workload
from engine.agents.wire import json_time
from engine.models.desk_work import Assignment, ContactHit, DeskEntry, MessageHit, SavedReply


def assignment_json(wa_id: str, assignment: Assignment) -> dict[str, Any]:
    return {
        "wa_id": wa_id,
        "agent": assignment.agent,
        "resolved": assignment.resolved,
        "resolved_at": json_time(assignment.resolved_at),
    }


def entry_json(entry: DeskEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json")


def reply_json(reply: SavedReply) -> dict[str, Any]:
    return reply.model_dump(mode="json")


def workload_json(loads: list[Workload]) -> list[dict[str, Any]]:
    return [{"email": w.agent.email, "name": w.agent.name, "open": w.open} for w in loads]


def contact_hit_json(hit: ContactHit) -> dict[str, Any]:
    data = hit.model_dump(mode="json", exclude={"contact_id", "address"})
    data["address"] = hit.address
    return data


def message_hit_json(hit: MessageHit) -> dict[str, Any]:
    return hit.model_dump(mode="json", exclude={"contact_id"})

"""Saved replies: a shortcut and its text, which agents insert in the compose box by
typing ``/`` and the shortcut. Admins manage them."""

from __future__ import annotations

import re
from datetime import datetime

from engine.agents.desk import require_agent
from engine.agents.work_refusals import InvalidField, NotAllowed, NotFound
from engine.models.agent import AgentRole
from engine.models.desk_work import SavedReply
from engine.store import Store, Tx

SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TEXT_MAX = 4096


def check_shortcut(shortcut: str) -> str:
    shortcut = shortcut.strip().lstrip("/").lower()
    if not SHORTCUT.fullmatch(shortcut):
        raise InvalidField(
            "shortcut",
            "1 to 32 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return shortcut


async def _require_admin(tx: Tx, email: str) -> None:
    agent = await require_agent(tx, email)
    if agent.role is not AgentRole.ADMIN:
        raise NotAllowed(f"only admins manage saved replies; {agent.name} is an agent")


async def save_reply_as(
    store: Store, email: str, shortcut: str, text: str, *, now: datetime
) -> SavedReply:
    shortcut = check_shortcut(shortcut)
    if not text.strip():
        raise InvalidField("text", "write the reply")
    if len(text) > TEXT_MAX:
        raise InvalidField("text", f"at most {TEXT_MAX} characters")

    async def job(tx: Tx) -> SavedReply:
        await _require_admin(tx, email)
        reply = SavedReply(shortcut=shortcut, text=text.strip(), updated_by=email, updated_at=now)
        await tx.saved_replies.put(reply)
        return reply

    return await store.write(job)


async def delete_reply_as(store: Store, email: str, shortcut: str) -> None:
    async def job(tx: Tx) -> None:
        await _require_admin(tx, email)
        if not await tx.saved_replies.delete(shortcut):
            raise NotFound(f"there is no saved reply /{shortcut}")

    await store.write(job)

"""Tying a status notification to our message when we never stored its wamid.

The sender puts our message id in every send body's ``biz_opaque_callback_data``, and
Meta echoes it in each status notification of that message. Normally the status finds
the message by wamid. But when the sender's process stopped during the HTTP call (or
the answer was lost), Meta may have accepted the message while we hold no wamid; its
``sent`` status then names our id, and :func:`message_for_status` records the wamid
(:meth:`~engine.store.outbox.OutboxRepo.adopt_wamid`). A queued or sending row becomes
``sent``, so the expired lease does not send the message a second time.
The webhook's status handler (:func:`engine.outbound.statuses.apply_status`) looks
messages up with it.
"""

from __future__ import annotations

from datetime import datetime

from engine.models.message import Message
from engine.store import Tx


async def message_for_status(
    tx: Tx, wamid: str, reference: str | None, *, at: datetime
) -> Message | None:
    """The message a status is about: by ``wamid``, else by ``reference`` (the status's
    ``biz_opaque_callback_data``) when that message has no wamid yet."""
    message = await tx.messages.get_by_wamid(wamid)
    if message is not None or not reference:
        return message
    if await tx.outbox.adopt_wamid(reference, wamid, at=at):
        return await tx.messages.get(reference)
    return None

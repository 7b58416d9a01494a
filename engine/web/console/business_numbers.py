"""Which business number a conversation is on, as the console shows it.

An install with several WhatsApp numbers (a shop's sales line and its support line)
answers each conversation from the number the customer last wrote to, and its agents
need to tell those conversations apart. With one number the label would say nothing, so
it is shown only when more than one is registered.
"""

from __future__ import annotations

from engine.store import Tx
from engine.web.console.render import format_phone

NumberLabels = dict[str, str]
"""The display number of each registered business number, by Meta's phone number id;
empty when the install has only one."""


async def number_labels(tx: Tx) -> NumberLabels:
    registered = await tx.numbers.list()
    if len(registered) < 2:
        return {}
    return {n.phone_number_id: format_phone(n.display_phone_number) for n in registered}


async def conversation_number(tx: Tx, labels: NumberLabels, contact_id: int) -> str | None:
    """The number a contact's conversation is on now, as ``labels`` show it (no read
    when the install has only one number)."""
    if not labels:
        return None
    return label_of(labels, await tx.numbers.last_written_to(contact_id))


def label_of(labels: NumberLabels, phone_number_id: str | None) -> str | None:
    """The number to show for a conversation on ``phone_number_id`` (None: show none)."""
    return None if phone_number_id is None else labels.get(phone_number_id)

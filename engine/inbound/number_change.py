"""A customer changed their phone number: WhatsApp's ``system`` message of type
``user_changed_number``, sent from the old number (``from``) with the new one in
``system.wa_id``.

The contact moves to the new number: the same contact, so the same opt-in, history,
tags and conversation, with a ledger entry (source ``number_change``) recording the old
and new numbers and the opt-in unchanged. Had the new number been a contact already,
that one is merged in, opted out if either was: a stop said from either number stands.
"""

from __future__ import annotations

import logging

from engine.models.contact import ConsentSource, Contact
from engine.store import Tx
from engine.store.contacts import Consent
from engine.whatsapp.webhook import System, valid_wa_id

log = logging.getLogger(__name__)

USER_CHANGED_NUMBER = "user_changed_number"


async def apply_number_change(tx: Tx, contact: Contact, system: System, message_id: str) -> bool:
    """Move ``contact`` (who wrote ``system``) to its new number; False when ``system``
    is not a number change, or names no valid new number (logged)."""
    if system.type != USER_CHANGED_NUMBER:
        return False
    new_wa_id = valid_wa_id(system.wa_id)
    if new_wa_id is None:
        log.warning(
            "number change %s names no valid new number (system.wa_id %r): contact %s kept",
            message_id,
            system.wa_id,
            contact.id,
        )
        return False
    note = f"number changed from {contact.wa_id or contact.user_id} to {new_wa_id} ({message_id})"
    await tx.contacts.change_number(
        contact.id, new_wa_id, Consent(ConsentSource.NUMBER_CHANGE, actor="whatsapp", note=note)
    )
    return True

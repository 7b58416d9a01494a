"""The hand-off from the webhook to whoever answers the customer.

After an inbound message is stored (and acknowledged to Meta), the inbound dispatcher
builds an :class:`Incoming` and gives it to one :class:`ConversationHandler`: the bot
runtime while the bot owns the conversation, the agents' queue while an agent does.
Consent keywords (STOP, START, ...) are applied by the inbound side before any
handler sees the message, and a stop word never reaches the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from engine.models.contact import Contact
from engine.models.conversation import Conversation
from engine.models.customer_input import CustomerInput
from engine.models.message import Message


@dataclass(frozen=True, slots=True)
class Incoming:
    message: Message
    contact: Contact
    conversation: Conversation
    input: CustomerInput
    new_contact: bool
    """True when this message created the contact (the "new contact" flow trigger)."""


class ConversationHandler(Protocol):
    async def handle(self, incoming: Incoming) -> None:
        """Answer ``incoming``. Called once per stored message, in order per contact."""

"""Domain models: frozen pydantic values shared by every part of the engine."""

from engine.models.contact import ConsentEvent, ConsentSource, Contact
from engine.models.conversation import Conversation, Owner
from engine.models.message import (
    Channel,
    Direction,
    Failure,
    Message,
    MessageStatus,
    StatusChange,
    TemplateRef,
)
from engine.models.template import Template, TemplateButton, TemplateCategory

__all__ = [
    "Channel",
    "ConsentEvent",
    "ConsentSource",
    "Contact",
    "Conversation",
    "Direction",
    "Failure",
    "Message",
    "MessageStatus",
    "Owner",
    "StatusChange",
    "Template",
    "TemplateButton",
    "TemplateCategory",
    "TemplateRef",
]

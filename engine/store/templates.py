"""The local catalogue of templates, keyed by name and language, with Meta's status.

A template Meta pauses or disables stays in the catalogue with that status; messages
queued with it wait (:meth:`TemplateRepo.put` releases them when it is approved again).
A template Meta tells us of in a webhook that the catalogue does not hold is kept
aside as *unknown* (:class:`UnknownTemplate`) until a sync brings its content."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from engine.models.template import Template, TemplateCategory


def wait_key(name: str, language: str) -> str:
    """How a message waiting for a template names it (``messages.template_wait``)."""
    return f"{name}/{language}"


@dataclass(frozen=True, slots=True)
class UnknownTemplate:
    """What a template webhook said about a template the catalogue does not hold."""

    name: str
    language: str
    meta_id: str | None = None
    status: str | None = None
    category: str | None = None
    quality_score: str | None = None
    updated_at: datetime | None = None


class TemplateRepo(ABC):
    @abstractmethod
    async def get(self, name: str, language: str) -> Template | None: ...

    @abstractmethod
    async def get_by_meta_id(self, meta_id: str) -> Template | None: ...

    @abstractmethod
    async def create(self, template: Template) -> Template:
        """AlreadyExists when the name and language are taken."""

    @abstractmethod
    async def put(self, template: Template) -> bool:
        """Create or replace; True when it was created. An approved template releases
        the messages that wait for it (due now, announced to the sender)."""

    @abstractmethod
    async def delete(self, name: str, language: str) -> bool: ...

    @abstractmethod
    async def list(self, *, category: TemplateCategory | None = None) -> list[Template]: ...

    @abstractmethod
    async def remember_unknown(self, unknown: UnknownTemplate) -> None:
        """Keep (or update) what a webhook said about a template we do not hold."""

    @abstractmethod
    async def unknown(self, name: str, language: str) -> UnknownTemplate | None: ...

    @abstractmethod
    async def waiting(self, name: str, language: str) -> int:
        """How many queued messages wait for this template."""

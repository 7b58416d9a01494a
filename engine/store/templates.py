"""The local catalogue of approved templates, keyed by name and language."""

from __future__ import annotations

from abc import ABC, abstractmethod

from engine.models.template import Template, TemplateCategory


class TemplateRepo(ABC):
    @abstractmethod
    async def get(self, name: str, language: str) -> Template | None: ...

    @abstractmethod
    async def create(self, template: Template) -> Template:
        """AlreadyExists when the name and language are taken."""

    @abstractmethod
    async def put(self, template: Template) -> bool:
        """Create or replace; True when it was created."""

    @abstractmethod
    async def delete(self, name: str, language: str) -> bool: ...

    @abstractmethod
    async def list(self, *, category: TemplateCategory | None = None) -> list[Template]: ...

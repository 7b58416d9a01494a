"""Small values the server keeps about itself (the API token's hash, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class SettingRepo(ABC):
    @abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abstractmethod
    async def put(self, key: str, value: str) -> None: ...

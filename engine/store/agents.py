"""Agent accounts, their console sessions, and failed sign-ins (for the rate limit)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from engine.models.agent import Agent, AgentRole


@dataclass(frozen=True, slots=True)
class NewAgent:
    name: str
    email: str
    role: AgentRole
    password_hash: str


@dataclass(frozen=True, slots=True)
class Credentials:
    agent: Agent
    password_hash: str


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in console session; ``csrf_token`` is the synchronizer token of its pages."""

    agent: Agent
    csrf_token: str
    expires_at: datetime


class AgentRepo(ABC):
    @abstractmethod
    async def create(self, new: NewAgent) -> Agent:
        """AlreadyExists when the email is taken (emails compare lower-case)."""

    @abstractmethod
    async def get(self, email: str) -> Agent | None: ...

    @abstractmethod
    async def credentials(self, email: str) -> Credentials | None: ...

    @abstractmethod
    async def all(self) -> list[Agent]:
        """Every agent, by name."""

    @abstractmethod
    async def start_session(
        self, agent_id: int, token_sha256: str, csrf_token: str, expires_at: datetime
    ) -> None: ...

    @abstractmethod
    async def session(self, token_sha256: str, *, now: datetime) -> Session | None:
        """The session with that token, unless it has expired."""

    @abstractmethod
    async def extend_session(self, token_sha256: str, expires_at: datetime) -> None: ...

    @abstractmethod
    async def end_session(self, token_sha256: str) -> None: ...

    @abstractmethod
    async def purge_sessions(self, *, expired_before: datetime) -> int: ...

    @abstractmethod
    async def record_login_failure(self, key: str, at: datetime) -> None: ...

    @abstractmethod
    async def login_failures(self, key: str, *, since: datetime) -> list[datetime]:
        """When sign-ins limited on ``key`` failed since ``since``, oldest first."""

    @abstractmethod
    async def clear_login_failures(self, key: str) -> None: ...

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.clock import Clock
from engine.models.agent import Agent, AgentRole
from engine.store.agents import AgentRepo, Credentials, NewAgent, Session
from engine.store.failures import AlreadyExists
from engine.store.postgres.db import PgDb

_COLUMNS = "a.id, a.name, a.email, a.role, a.created_at"


def _agent(row: Mapping[str, Any]) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        role=AgentRole(row["role"]),
        created_at=row["created_at"],
    )


class PgAgentRepo(AgentRepo):
    def __init__(self, db: PgDb, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, new: NewAgent) -> Agent:
        taken = AlreadyExists(f"an agent with email {new.email} exists")
        # Look first: an insert that conflicts would still use up an id.
        if await self.get(new.email) is not None:
            raise taken
        row = await self._db.one(
            "INSERT INTO agents (name, email, role, password_hash, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING"
            " RETURNING id, name, email, role, created_at",
            new.name,
            new.email.lower(),
            new.role.value,
            new.password_hash,
            self._clock.now(),
        )
        if row is None:  # a concurrent transaction took the email since
            raise taken
        return _agent(row)

    async def get(self, email: str) -> Agent | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM agents a WHERE a.email = $1", email.lower()
        )
        return None if row is None else _agent(row)

    async def credentials(self, email: str) -> Credentials | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS}, a.password_hash FROM agents a WHERE a.email = $1",
            email.lower(),
        )
        return None if row is None else Credentials(_agent(row), row["password_hash"])

    async def all(self) -> list[Agent]:
        rows = await self._db.all(f"SELECT {_COLUMNS} FROM agents a ORDER BY a.name, a.id")
        return [_agent(row) for row in rows]

    async def start_session(
        self, agent_id: int, token_sha256: str, csrf_token: str, expires_at: datetime
    ) -> None:
        await self._db.run(
            "INSERT INTO agent_sessions (token_sha256, agent_id, csrf_token, created_at,"
            " expires_at) VALUES ($1, $2, $3, $4, $5)",
            token_sha256,
            agent_id,
            csrf_token,
            self._clock.now(),
            expires_at,
        )

    async def session(self, token_sha256: str, *, now: datetime) -> Session | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS}, s.csrf_token, s.expires_at FROM agent_sessions s"
            " JOIN agents a ON a.id = s.agent_id WHERE s.token_sha256 = $1 AND s.expires_at > $2",
            token_sha256,
            now,
        )
        if row is None:
            return None
        return Session(_agent(row), row["csrf_token"], row["expires_at"])

    async def extend_session(self, token_sha256: str, expires_at: datetime) -> None:
        await self._db.run(
            "UPDATE agent_sessions SET expires_at = $2 WHERE token_sha256 = $1",
            token_sha256,
            expires_at,
        )

    async def end_session(self, token_sha256: str) -> None:
        await self._db.run("DELETE FROM agent_sessions WHERE token_sha256 = $1", token_sha256)

    async def purge_sessions(self, *, expired_before: datetime) -> int:
        return await self._db.run(
            "DELETE FROM agent_sessions WHERE expires_at <= $1", expired_before
        )

    async def record_login_failure(self, key: str, at: datetime) -> None:
        await self._db.run("INSERT INTO login_failures (key, at) VALUES ($1, $2)", key, at)

    async def login_failures(self, key: str, *, since: datetime) -> list[datetime]:
        rows = await self._db.all(
            "SELECT at FROM login_failures WHERE key = $1 AND at > $2 ORDER BY at, id",
            key,
            since,
        )
        return [row["at"] for row in rows]

    async def clear_login_failures(self, key: str) -> None:
        await self._db.run("DELETE FROM login_failures WHERE key = $1", key)

from __future__ import annotations

import sqlite3
from datetime import datetime

from engine.clock import Clock
from engine.models.agent import Agent, AgentRole
from engine.store.agents import AgentRepo, Credentials, NewAgent, Session
from engine.store.failures import AlreadyExists
from engine.store.sqlite.db import Db, from_db, to_db

# A marketer is marked in a column of its own (see migration 0017).
_ROLE = "CASE WHEN a.marketer THEN 'marketer' ELSE a.role END AS role"
_COLUMNS = f"a.id, a.name, a.email, {_ROLE}, a.created_at"


def _agent(row: sqlite3.Row) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        role=AgentRole(row["role"]),
        created_at=from_db(row["created_at"]),
    )


class SqliteAgentRepo(AgentRepo):
    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, new: NewAgent) -> Agent:
        now = to_db(self._clock.now())
        marketer = new.role is AgentRole.MARKETER
        row = await self._db.one(
            "INSERT INTO agents"
            " (name, email, role, marketer, password_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            " RETURNING id, name, email,"
            " CASE WHEN marketer THEN 'marketer' ELSE role END AS role, created_at",
            (
                new.name,
                new.email.lower(),
                AgentRole.AGENT.value if marketer else new.role.value,
                int(marketer),
                new.password_hash,
                now,
                now,
            ),
        )
        if row is None:
            raise AlreadyExists(f"an agent with email {new.email} exists")
        return _agent(row)

    async def get(self, email: str) -> Agent | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM agents a WHERE a.email = ?", (email.lower(),)
        )
        return None if row is None else _agent(row)

    async def credentials(self, email: str) -> Credentials | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS}, a.password_hash FROM agents a WHERE a.email = ?",
            (email.lower(),),
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
            " expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_sha256, agent_id, csrf_token, to_db(self._clock.now()), to_db(expires_at)),
        )

    async def session(self, token_sha256: str, *, now: datetime) -> Session | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS}, s.csrf_token, s.expires_at FROM agent_sessions s"
            " JOIN agents a ON a.id = s.agent_id WHERE s.token_sha256 = ? AND s.expires_at > ?",
            (token_sha256, to_db(now)),
        )
        if row is None:
            return None
        return Session(_agent(row), row["csrf_token"], from_db(row["expires_at"]))

    async def extend_session(self, token_sha256: str, expires_at: datetime) -> None:
        await self._db.run(
            "UPDATE agent_sessions SET expires_at = ? WHERE token_sha256 = ?",
            (to_db(expires_at), token_sha256),
        )

    async def end_session(self, token_sha256: str) -> None:
        await self._db.run("DELETE FROM agent_sessions WHERE token_sha256 = ?", (token_sha256,))

    async def purge_sessions(self, *, expired_before: datetime) -> int:
        return await self._db.run(
            "DELETE FROM agent_sessions WHERE expires_at <= ?", (to_db(expired_before),)
        )

    async def record_login_failure(self, key: str, at: datetime) -> None:
        await self._db.run("INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, to_db(at)))

    async def login_failures(self, key: str, *, since: datetime) -> list[datetime]:
        rows = await self._db.all(
            "SELECT at FROM login_failures WHERE key = ? AND at > ? ORDER BY at",
            (key, to_db(since)),
        )
        return [from_db(row["at"]) for row in rows]

    async def clear_login_failures(self, key: str) -> None:
        await self._db.run("DELETE FROM login_failures WHERE key = ?", (key,))

"""REST: agent accounts. Agents sign in to the console."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from engine.agents.passwords import MAX_LENGTH, MIN_LENGTH, hash_password
from engine.models.agent import Agent, AgentRole
from engine.store import AlreadyExists
from engine.store.agents import NewAgent
from engine.web.error_answers import ApiError
from engine.web.keys import STORE
from engine.web.validation import Body, Email, parse_body

routes = web.RouteTableDef()


class AgentCreate(Body):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    email: Email
    password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    role: AgentRole = AgentRole.AGENT


def agent_json(agent: Agent) -> dict[str, Any]:
    return agent.model_dump(mode="json")


@routes.post("/api/v1/agents")
async def create_agent(request: web.Request) -> web.Response:
    body = await parse_body(request, AgentCreate)
    # scrypt is deliberately slow; keep the event loop answering webhooks meanwhile.
    password_hash = await asyncio.to_thread(hash_password, body.password)
    new = NewAgent(name=body.name, email=body.email, role=body.role, password_hash=password_hash)
    try:
        agent = await request.app[STORE].write(lambda tx: tx.agents.create(new))
    except AlreadyExists:
        raise ApiError(409, "agent_exists", f"an agent with email {body.email} exists") from None
    return web.json_response(agent_json(agent), status=201)


@routes.get("/api/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    async with request.app[STORE].read() as tx:
        agents = await tx.agents.all()
    return web.json_response({"agents": [agent_json(agent) for agent in agents]})

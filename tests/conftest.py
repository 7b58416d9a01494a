"""Shared fixtures: a real SQLite file per test and a real aiohttp server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from engine.clock import FrozenClock
from engine.composition import Background
from engine.config import Settings
from engine.store import Store, open_store
from engine.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
API_TOKEN = "test-api-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

AiohttpClient = Callable[..., Coroutine[Any, Any, TestClient[Any, Any]]]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'optinflow.db'}",
        "API_TOKEN": API_TOKEN,
        "TEMPLATES_FILE": FIXTURES / "templates.yaml",
        "FLOWS_DIR": ROOT / "flows",
        # No sender unless a test serves the app where the built-in simulator expects it
        # (tests/outbound_support.py start_outbound): queued rows stay queued.
        "OUTBOUND_WORKER": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def make_app(settings: Settings, *, clock: FrozenClock | None = None) -> web.Application:
    """The real application; inbound messages are handed to the bot whether or not this
    test's settings let the app send (``OUTBOUND_WORKER``)."""
    background = Background(sending=settings.outbound_worker, answering=True)
    return create_app(settings, clock=clock, background=background)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def store(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'store.db'}", clock=clock)
    yield opened
    await opened.close()


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> web.Application:
    return make_app(settings, clock=clock)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, app: web.Application) -> TestClient[Any, Any]:
    """A client of the real application served on 127.0.0.1, sending the API token."""
    return await aiohttp_client(app, headers=AUTH)

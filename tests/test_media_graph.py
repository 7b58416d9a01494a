"""Media on the Graph API against the simulator served by a real aiohttp server: the
two-step fetch (``GET /{media-id}``, then the download with the token), one download
however often it is shown, the size cap evicting the least recently used, uploads, and
refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from engine.clock import FrozenClock
from engine.config import SIMULATOR_PREFIX
from engine.devtools.simulator import SIMULATOR_TOKEN, Simulator, create_simulator_app
from engine.media.cache import MediaCache
from engine.media.graph import MediaService, MediaUnavailable

PHONE_NUMBER_ID = "100000000000001"


@pytest.fixture
async def simulator(clock: FrozenClock) -> AsyncIterator[tuple[Simulator, str]]:
    simulator = Simulator(
        store=None, clock=clock, phone_number_id=PHONE_NUMBER_ID, access_token=SIMULATOR_TOKEN
    )
    server = TestServer(create_simulator_app(simulator, api_token=None), host="127.0.0.1")
    await server.start_server()
    yield simulator, str(server.make_url(SIMULATOR_PREFIX))
    await server.close()


@pytest.fixture
async def requests() -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    """A client session that lists the URLs it asked for."""
    asked: list[str] = []

    async def on_start(_: Any, __: SimpleNamespace, params: Any) -> None:
        asked.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session, asked


def files_in(directory: Path) -> int:
    return len(list(directory.glob("*.bin")))


def service(
    session: aiohttp.ClientSession,
    base: str,
    directory: Path,
    *,
    max_bytes: int = 10_000,
    token: str = SIMULATOR_TOKEN,
) -> MediaService:
    return MediaService(
        session,
        MediaCache(directory, max_bytes=max_bytes),
        graph_base=base,
        api_version="v21.0",
        access_token=token,
    )


async def test_media_is_fetched_once_then_served_from_the_disk_cache(
    simulator: tuple[Simulator, str],
    requests: tuple[aiohttp.ClientSession, list[str]],
    tmp_path: Path,
) -> None:
    sim, base = simulator
    session, asked = requests
    photo = sim.add_media(b"\x89PNG fake", mime_type="image/png", filename=None)
    media = service(session, base, tmp_path)

    first, second = await asyncio.gather(media.get(photo.id), media.get(photo.id))
    assert first.path.read_bytes() == b"\x89PNG fake"
    assert (first.mime_type, second.path) == ("image/png", first.path)
    again = await media.get(photo.id)
    assert again.path == first.path
    assert asked == [
        f"/simulator/v21.0/{photo.id}",
        f"/simulator/media-download/{photo.id}",
    ], "one lookup and one download, however often it is asked for"

    # A restart finds what is on disk.
    reopened = service(session, base, tmp_path)
    assert (await reopened.get(photo.id)).path.read_bytes() == b"\x89PNG fake"
    assert len(asked) == 2


async def test_the_cache_keeps_under_its_cap_by_removing_the_least_recently_used(
    simulator: tuple[Simulator, str],
    requests: tuple[aiohttp.ClientSession, list[str]],
    tmp_path: Path,
) -> None:
    sim, base = simulator
    session, asked = requests
    a, b, c = (
        sim.add_media(bytes([n]) * 100, mime_type="image/jpeg", filename=None) for n in range(3)
    )
    media = service(session, base, tmp_path, max_bytes=250)
    await media.get(a.id)
    await media.get(b.id)
    await media.get(a.id)  # a is used again: b is now the least recently used
    await media.get(c.id)
    assert media.cache.total_bytes == 200
    assert media.cache.get(b.id) is None
    assert media.cache.get(a.id) is not None
    assert media.cache.get(c.id) is not None
    assert files_in(tmp_path) == 2
    downloads = [path for path in asked if "media-download" in path]
    assert len(downloads) == 3

    await media.get(b.id)  # back from the Graph API
    assert len([path for path in asked if "media-download" in path]) == 4


async def test_unknown_media_a_wrong_token_and_bad_ids_are_unavailable(
    simulator: tuple[Simulator, str],
    requests: tuple[aiohttp.ClientSession, list[str]],
    tmp_path: Path,
) -> None:
    sim, base = simulator
    session, asked = requests
    photo = sim.add_media(b"x", mime_type="image/png", filename=None)
    with pytest.raises(MediaUnavailable):
        await service(session, base, tmp_path).get("999")
    with pytest.raises(MediaUnavailable):
        await service(session, base, tmp_path / "other", token="wrong").get(photo.id)
    with pytest.raises(MediaUnavailable):
        await service(session, base, tmp_path).get("../etc/passwd")
    assert "/simulator/v21.0/../etc/passwd" not in asked
    assert files_in(tmp_path) == 0


async def test_an_upload_answers_a_media_id_the_graph_api_then_serves(
    simulator: tuple[Simulator, str],
    requests: tuple[aiohttp.ClientSession, list[str]],
    tmp_path: Path,
) -> None:
    sim, base = simulator
    session, _ = requests
    media = service(session, base, tmp_path)
    uploaded = await media.upload(
        PHONE_NUMBER_ID, b"%PDF-1.4 invoice", mime_type="application/pdf", filename="a.pdf"
    )
    stored = sim.media(uploaded.media_id)
    assert stored is not None
    assert (stored.content, stored.mime_type, stored.filename) == (
        b"%PDF-1.4 invoice",
        "application/pdf",
        "a.pdf",
    )
    cached = media.cache.get(uploaded.media_id)
    assert cached is not None
    assert cached.filename == "a.pdf"

    with pytest.raises(MediaUnavailable):
        await service(session, base, tmp_path, token="wrong").upload(
            PHONE_NUMBER_ID, b"x", mime_type="image/png", filename="x.png"
        )

"""Media on the Graph API: ``GET /{version}/{media-id}`` answers the download URL, which
is fetched with the access token as Bearer; ``POST /{version}/{phone_number_id}/media``
uploads a file and answers its media id for a send. Fetched media is kept in a
:class:`~engine.media.cache.MediaCache`, so each is downloaded once."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiohttp

from engine.media.cache import CachedMedia, MediaCache

MEDIA_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
"""What a media id may look like before it goes into a Graph API path."""


class MediaUnavailable(Exception):
    """The Graph API did not give the media (unknown id, expired, unreachable)."""


@dataclass(frozen=True, slots=True)
class Uploaded:
    media_id: str


class MediaService:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        cache: MediaCache,
        *,
        graph_base: str,
        api_version: str,
        access_token: str,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._session = session
        self.cache = cache
        self._base = f"{graph_base.rstrip('/')}/{api_version}"
        self._auth = {"Authorization": f"Bearer {access_token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._fetching: dict[str, asyncio.Future[CachedMedia]] = {}

    async def get(self, media_id: str) -> CachedMedia:
        """The media from the cache, else from the Graph API (one download however many
        ask at once)."""
        if not MEDIA_ID.fullmatch(media_id):
            raise MediaUnavailable(f"{media_id!r} is not a media id")
        cached = self.cache.get(media_id)
        if cached is not None:
            return cached
        running = self._fetching.get(media_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[CachedMedia] = asyncio.get_running_loop().create_future()
        self._fetching[media_id] = future
        try:
            media = await self._download(media_id)
            future.set_result(media)
            return media
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._fetching[media_id]

    async def _download(self, media_id: str) -> CachedMedia:
        try:
            async with self._session.get(
                f"{self._base}/{media_id}", headers=self._auth, timeout=self._timeout
            ) as answer:
                if answer.status != 200:
                    raise MediaUnavailable(f"the Graph API answered {answer.status}")
                about = await answer.json(content_type=None)
            url = about.get("url") if isinstance(about, dict) else None
            if not isinstance(url, str) or not url:
                raise MediaUnavailable("the Graph API gave no download URL")
            async with self._session.get(url, headers=self._auth, timeout=self._timeout) as got:
                if got.status != 200:
                    raise MediaUnavailable(f"the download answered {got.status}")
                content = await got.read()
                mime = about.get("mime_type") or got.headers.get(
                    "Content-Type", "application/octet-stream"
                )
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise MediaUnavailable(f"cannot fetch media {media_id}: {error!r}") from None
        # Off the event loop: a document may be tens of megabytes.
        return await asyncio.to_thread(
            self.cache.put, media_id, content, mime_type=str(mime), filename=None
        )

    async def upload(
        self, phone_number_id: str, content: bytes, *, mime_type: str, filename: str
    ) -> Uploaded:
        """Upload for a send; the file is cached under its new id, so the timeline shows
        it without downloading it back."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime_type)
        form.add_field("file", content, filename=filename, content_type=mime_type)
        try:
            async with self._session.post(
                f"{self._base}/{phone_number_id}/media",
                data=form,
                headers=self._auth,
                timeout=self._timeout,
            ) as answer:
                document = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise MediaUnavailable(f"the upload failed: {error!r}") from None
        media_id = document.get("id") if isinstance(document, dict) else None
        if status != 200 or not isinstance(media_id, str) or not MEDIA_ID.fullmatch(media_id):
            raise MediaUnavailable(f"the Graph API refused the upload ({status}): {document}")
        await asyncio.to_thread(
            self.cache.put, media_id, content, mime_type=mime_type, filename=filename
        )
        return Uploaded(media_id)

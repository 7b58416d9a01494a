"""Making the call of an ``http`` step, outside the runtime and outside the store."""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

import aiohttp

from engine.flows.events import HttpRequested
from engine.flows.resumptions import HttpResult

MAX_ANSWER_BYTES = 1 << 20


class HttpCaller(Protocol):
    async def __call__(self, request: HttpRequested) -> HttpResult: ...


class AiohttpCaller:
    """Calls integrations with one shared aiohttp client session."""

    def __init__(self, client: aiohttp.ClientSession) -> None:
        self._client = client

    async def __call__(self, request: HttpRequested) -> HttpResult:
        timeout = aiohttp.ClientTimeout(total=request.timeout_seconds)
        try:
            async with self._client.request(
                request.method,
                request.url,
                headers=request.headers,
                json=request.body,
                timeout=timeout,
            ) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
        except TimeoutError:
            return HttpResult(error=f"no answer within {request.timeout_seconds:g}s")
        except (aiohttp.ClientError, ValueError, OSError) as error:
            return HttpResult(error=f"the call failed: {error or type(error).__name__}")
        if len(raw) > MAX_ANSWER_BYTES:
            return HttpResult(status, error=f"the answer is over {MAX_ANSWER_BYTES} bytes")
        if status >= 400:
            return HttpResult(status, error=f"the integration answered HTTP {status}")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return HttpResult(status, error="the answer is not JSON")
        return HttpResult(status, body)


async def call_with_deadline(caller: HttpCaller, request: HttpRequested) -> HttpResult:
    """``caller``'s result, never later than the step's timeout (plus a little slack)."""
    try:
        return await asyncio.wait_for(caller(request), request.timeout_seconds + 1)
    except TimeoutError:
        return HttpResult(error=f"no answer within {request.timeout_seconds:g}s")

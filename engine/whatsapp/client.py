"""The Cloud API client: ``POST {graph_base}/{version}/{phone_number_id}/messages``.

One call, one answer: :meth:`CloudApiClient.send` returns :class:`Accepted` with the
wamid Meta gave the message (``messages[0].id``), or raises a
:class:`~engine.whatsapp.send_errors.SendError` saying whether a retry can help. With
``marketing=True`` it posts to the Marketing Messages API
(``/{phone_number_id}/marketing_messages``) instead; a business Meta has not onboarded
there is answered :class:`~engine.whatsapp.send_errors.MarketingNotOnboarded`.

:meth:`CloudApiClient.message_templates` reads a WhatsApp Business Account's templates
(``GET /{waba_id}/message_templates``), every page of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from engine.whatsapp.send import SendBody, wire_json
from engine.whatsapp.send_errors import (
    MarketingNotOnboarded,
    SendError,
    Unavailable,
    classify,
    not_onboarded,
)

TEMPLATE_FIELDS = (
    "id,name,language,status,category,components,quality_score,message_send_ttl_seconds"
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """Meta took the message; ``wamid`` ties its later status notifications to it."""

    wamid: str
    wa_id: str | None = None
    message_status: str | None = None


class CloudApiClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        graph_base: str,
        api_version: str,
        access_token: str,
        timeout_seconds: float = 15.0,
    ) -> None:
        self._session = session
        self._base = f"{graph_base.rstrip('/')}/{api_version}"
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.timeout_seconds = timeout_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    def messages_url(self, phone_number_id: str, *, marketing: bool = False) -> str:
        return f"{self._base}/{phone_number_id}/{'marketing_messages' if marketing else 'messages'}"

    async def send(
        self, phone_number_id: str, body: SendBody | bytes, *, marketing: bool = False
    ) -> Accepted:
        data = body if isinstance(body, bytes) else wire_json(body)
        try:
            async with self._session.post(
                self.messages_url(phone_number_id, marketing=marketing),
                data=data,
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                answer = await response.read()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as error:
            # Nothing reached Meta: retrying cannot send twice.
            raise Unavailable("connection_failed", f"cannot connect: {error}") from None
        except TimeoutError:
            raise Unavailable(
                "timeout", "the Cloud API did not answer in time", ambiguous=True
            ) from None
        except aiohttp.ClientError as error:
            raise Unavailable(
                "connection_lost", f"the connection broke: {error!r}", ambiguous=True
            ) from None
        if 200 <= status < 300:
            return _accepted(status, answer)
        refused = classify(status, answer, retry_after=retry_after)
        if marketing and not_onboarded(refused):
            raise MarketingNotOnboarded(
                refused.code, refused.title, refused.details, http_status=refused.http_status
            )
        raise refused

    async def message_templates(
        self, waba_id: str, *, page_size: int = 100, max_pages: int = 1000
    ) -> list[dict[str, Any]]:
        """Every template of the account, following ``paging.next`` page after page; a
        :class:`SendError` when a page cannot be read (nothing is returned then)."""
        url: str | None = f"{self._base}/{waba_id}/message_templates"
        params: dict[str, str] | None = {"limit": str(page_size), "fields": TEMPLATE_FIELDS}
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            if url is None:
                return found
            document = await self._get(url, params)
            data = document.get("data")
            if not isinstance(data, list):
                raise Unavailable("unreadable_response", "a template page without data")
            found.extend(item for item in data if isinstance(item, dict))
            paging = document.get("paging")
            paging = paging if isinstance(paging, dict) else {}
            after = (paging.get("cursors") or {}).get("after") if paging.get("next") else None
            # Meta gives the next page's address; its cursor alone would do as well.
            url, params = (str(paging["next"]), None) if after is not None else (None, None)
        raise Unavailable("too_many_pages", f"more than {max_pages} pages of templates")

    async def _get(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        try:
            async with self._session.get(
                url, params=params, headers=self._headers, timeout=self._timeout
            ) as response:
                answer = await response.read()
                status = response.status
        except aiohttp.ClientError as error:
            raise Unavailable("connection_failed", f"cannot read {url}: {error!r}") from None
        except TimeoutError:
            raise Unavailable("timeout", f"{url} did not answer in time") from None
        if not 200 <= status < 300:
            raise classify(status, answer)
        try:
            document = json.loads(answer)
        except ValueError:
            raise _unreadable(status, answer) from None
        if not isinstance(document, dict):
            raise _unreadable(status, answer)
        return document


def _accepted(status: int, answer: bytes) -> Accepted:
    try:
        document = json.loads(answer)
        message = document["messages"][0]
        wamid = message["id"]
        if not isinstance(wamid, str) or not wamid:
            raise ValueError("empty id")
    except (ValueError, KeyError, IndexError, TypeError):
        # A 2xx without a wamid: Meta may have taken the message; we cannot tell.
        raise _unreadable(status, answer) from None
    contacts = document.get("contacts") or [{}]
    wa_id = contacts[0].get("wa_id") if isinstance(contacts[0], dict) else None
    return Accepted(wamid=wamid, wa_id=wa_id, message_status=message.get("message_status"))


def _unreadable(status: int, answer: bytes) -> SendError:
    return Unavailable(
        "unreadable_response",
        f"HTTP {status} without a message id: {answer[:200]!r}",
        http_status=status,
        ambiguous=True,
    )


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

"""A built-in stand-in for Meta's Cloud API, for the embedded default, demos and tests.

When ``WA_ACCESS_TOKEN`` is unset the server mounts the simulator under ``/simulator``
and points its own Cloud API client there. Like Meta, the simulator:

- takes ``POST /simulator/{version}/{phone_number_id}/messages`` with a Bearer token and
  Meta's send body, checks it (known fields, the template exists in the catalogue in
  that language, the number of body parameters), and answers with a wamid, or with
  Meta's error envelope (100, 131008, 132000, 132001, ...);
- then posts ``sent``, ``delivered`` and ``read`` status notifications in Meta's shape,
  signed with ``X-Hub-Signature-256`` when an app secret is configured, to the
  configured webhook URL (our own ``POST /webhook``);
- fails free-form messages (text, interactive, media) with 131047 in a ``failed``
  status when the contact has not written in the last 24 hours (it reads the store).

It can be told to fail chosen recipients (``POST /simulator/failures``): with a Meta
code answered at once (130429, 131056, 100, ...) or in a ``failed`` status (131026,
131050, 131049, 131047, as Meta does), with an HTTP 5xx, with an unreadable answer
(``garbage``), or by not answering in time (``timeout``); every time or the next
``times`` sends. ``GET /simulator/messages`` lists what it received.

It also lists the account's templates like Meta's ``GET /{version}/{waba_id}/message_templates``
(the templates file, page by page; :mod:`engine.devtools.simulated_templates`), changes a
template as Meta would and posts Meta's template webhooks about it
(``PUT /simulator/templates/{name}/{language}``), and takes the Marketing Messages API's
``POST /{version}/{phone_number_id}/marketing_messages`` (MARKETING templates only; told
``PUT /simulator/marketing-messages {"onboarded": false}``, it answers that the business
is not onboarded).

What it received includes one-time codes and every customer's messages, and failures
change what the server does, so those routes need the REST API token (Bearer, as
``/api/v1``), unless the simulator was opened for local tinkering (``SIMULATOR_OPEN``,
or the standalone simulator started without an API token). The send endpoint takes
what our sender posts: the simulator's own access token, :data:`SIMULATOR_TOKEN`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import logging
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.clock import Clock, SystemClock
from engine.config import SIMULATOR_PREFIX
from engine.devtools.simulated_templates import SimulatedTemplates, webhooks_for_change
from engine.identity import is_user_id
from engine.models.conversation import window_open_at
from engine.models.number import LimitTier, Quality
from engine.models.template import Template, TemplateCategory
from engine.outbound.enqueue import last_inbound
from engine.store import Store, open_store
from engine.store.numbers import display_digits
from engine.whatsapp.send import SendBody
from engine.whatsapp.send_errors import (
    AUTHENTICATION_TO_USER_ID,
    MARKETING_STOPPED,
    WINDOW_CLOSED,
    title_of,
)
from engine.whatsapp.signature import HEADER as SIGNATURE_HEADER
from engine.whatsapp.signature import sign
from engine.whatsapp.templates import meta_template

log = logging.getLogger(__name__)

SIMULATOR_TOKEN = "simulator-access-token"
"""The access token our sender posts to the simulator (no ``WA_ACCESS_TOKEN`` is set)."""

ASYNC_CODES = frozenset({131026, MARKETING_STOPPED, 131049, WINDOW_CLOSED})
"""Failures Meta reports in a ``failed`` status after accepting the send."""

_NOT_FOUND_CODES = frozenset({132001})

MAX_MEDIA_BYTES = 100 * 1024 * 1024
"""The largest file it takes (Meta's limit for documents)."""


class FailureRule(BaseModel):
    """``POST /simulator/failures`` body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str = Field(min_length=1, description="the recipient (wa_id) to fail")
    code: int | Literal["timeout", "garbage", "slow"] = Field(
        description="a Meta error code, an HTTP status 500-599, 'timeout' (no answer in "
        "time), 'garbage' (an unreadable 200), or 'slow' (accepted, but answered late)"
    )
    times: int | None = Field(default=None, ge=1, description="the next N sends; null: all")
    delivery: Literal["response", "webhook"] | None = Field(
        default=None,
        description="answer the error at once, or accept and report a failed status; "
        "by default as Meta does for that code",
    )
    hold_seconds: float = Field(default=30.0, ge=0, description="for 'timeout' and 'slow'")

    @property
    def answered_at_once(self) -> bool:
        return not self.in_webhook and self.code != "slow"

    @property
    def in_webhook(self) -> bool:
        if self.delivery is not None:
            return self.delivery == "webhook"
        return isinstance(self.code, int) and self.code in ASYNC_CODES


@dataclass(slots=True)
class _ActiveRule:
    rule: FailureRule
    left: int | None


@dataclass(slots=True)
class Received:
    """One send request as the simulator saw it."""

    seq: int
    phone_number_id: str
    to: str | None
    type: str | None
    reference: str | None
    raw: bytes
    received_at: datetime
    monotonic: float
    wamid: str | None = None
    error: dict[str, Any] | None = None
    statuses: list[str] = field(default_factory=list)
    endpoint: str = "messages"
    """``messages``, or ``marketing_messages`` (the Marketing Messages API)."""

    def as_json(self) -> dict[str, Any]:
        try:
            body: Any = json.loads(self.raw)
        except ValueError:
            body = self.raw.decode("utf-8", "replace")
        return {
            "seq": self.seq,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "type": self.type,
            "biz_opaque_callback_data": self.reference,
            "wamid": self.wamid,
            "error": self.error,
            "statuses": list(self.statuses),
            "received_at": self.received_at.isoformat(),
            "endpoint": self.endpoint,
            "body": body,
        }


@dataclass(frozen=True, slots=True)
class StoredMedia:
    id: str
    content: bytes
    mime_type: str
    filename: str | None
    sha256: str

    def about(self, url: str) -> dict[str, Any]:
        """What ``GET /{media-id}`` answers."""
        return {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "file_size": len(self.content),
            "id": self.id,
        }


# Media ids are long digit strings at Meta.
_MEDIA_IDS = itertools.count(int(time.time() * 1000) * 1000)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def _json(status: int, document: dict[str, Any]) -> Answer:
    return Answer(status, json.dumps(document, separators=(",", ":")).encode())


def graph_error(
    code: int,
    details: str | None = None,
    *,
    status: int = 400,
    subcode: int | None = None,
    message: str | None = None,
) -> Answer:
    """Meta's error envelope."""
    error: dict[str, Any] = {
        "message": message or f"(#{code}) {title_of(code)}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "A" + uuid.uuid4().hex[:22],
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return _json(status, {"error": error})


POST_TRIES = 16
POST_MAX_PAUSE_SECONDS = 5.0


class Simulator:
    def __init__(
        self,
        *,
        store: Store | None,
        clock: Clock,
        phone_number_id: str,
        display_phone_number: str = "15550783881",
        waba_id: str = "102290129340398",
        webhook_url: str | None = None,
        app_secret: str | None = None,
        access_token: str | None = None,
        status_delay_seconds: float = 0.05,
        read_receipts: bool = True,
        templates_file: Path | None = None,
    ) -> None:
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.waba_id = waba_id
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.read_receipts = read_receipts
        self._store = store
        self._clock = clock
        self._access_token = access_token
        self._delay = status_delay_seconds
        self._received: list[Received] = []
        self._seq = itertools.count(1)
        self._rules: dict[str, list[_ActiveRule]] = {}
        self._templates: dict[tuple[str, str], tuple[Template, float]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned_404 = False
        self.templates = SimulatedTemplates(templates_file)
        """The account's templates, served as Meta's message_templates."""
        self.marketing_onboarded = True
        """Whether the business is onboarded to the Marketing Messages API."""
        self._media: dict[str, StoredMedia] = {}
        self._displays: dict[str, str] = {phone_number_id: display_phone_number}

    # -- lifetime -----------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def settle(self, within_seconds: float = 15.0) -> None:
        """Wait until every status notification due so far has been posted;
        TimeoutError naming how many are still unposted after ``within_seconds``."""
        deadline = time.monotonic() + within_seconds
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=deadline - time.monotonic())
        if self._tasks:
            raise TimeoutError(
                f"{len(self._tasks)} status notification(s) still unposted after {within_seconds} s"
            )

    # -- control ------------------------------------------------------------------

    def add_failure(self, rule: FailureRule) -> None:
        self._rules.setdefault(rule.to, []).append(_ActiveRule(rule, rule.times))

    def failures(self) -> list[FailureRule]:
        return [active.rule for rules in self._rules.values() for active in rules]

    def clear_failures(self) -> None:
        self._rules.clear()

    def received(self, to: str | None = None) -> list[Received]:
        return [r for r in self._received if to is None or r.to == to]

    def clear_received(self) -> None:
        self._received.clear()

    def stats(self) -> dict[str, Any]:
        accepted = [r for r in self._received if r.wamid is not None]
        seconds = accepted[-1].monotonic - accepted[0].monotonic if len(accepted) > 1 else 0.0
        return {
            "received": len(self._received),
            "accepted": len(accepted),
            "rejected": len(self._received) - len(accepted),
            "seconds": seconds,
            "rate": (len(accepted) - 1) / seconds if seconds > 0 else None,
        }

    def _take_rule(self, to: str) -> FailureRule | None:
        rules = self._rules.get(to)
        if not rules:
            return None
        active = rules[0]
        if active.left is not None:
            active.left -= 1
            if active.left <= 0:
                rules.pop(0)
        return active.rule

    # -- media ----------------------------------------------------------------------

    def add_media(self, content: bytes, *, mime_type: str, filename: str | None) -> StoredMedia:
        """Keep a file as Meta keeps what a customer sends or a business uploads."""
        media = StoredMedia(
            id=str(next(_MEDIA_IDS)),
            content=content,
            mime_type=mime_type,
            filename=filename,
            sha256=hashlib.sha256(content).hexdigest(),
        )
        self._media[media.id] = media
        return media

    def media(self, media_id: str) -> StoredMedia | None:
        return self._media.get(media_id)

    def authorized(self, authorization: str | None) -> bool:
        """Whether a Graph API call carries the access token (any, when none is set)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return not self._access_token or hmac.compare_digest(token, self._access_token)

    # -- the Cloud API ------------------------------------------------------------

    async def handle_send(
        self,
        phone_number_id: str,
        authorization: str | None,
        raw: bytes,
        *,
        marketing: bool = False,
    ) -> Answer:
        record = Received(
            seq=next(self._seq),
            phone_number_id=phone_number_id,
            to=None,
            type=None,
            reference=None,
            raw=raw,
            received_at=self._clock.now(),
            monotonic=time.monotonic(),
            endpoint="marketing_messages" if marketing else "messages",
        )
        self._received.append(record)
        answer, body, template = await self._check(phone_number_id, authorization, raw, record)
        if answer is None and marketing:
            answer = self._marketing_refusal(template)
        if answer is not None:
            record.error = _error_of(answer)
            return answer
        assert body is not None
        assert record.to is not None
        wamid = _new_wamid(record.to)
        record.wamid = wamid
        rule = self._peek_rule(record.to)
        failure: int | None = None
        late_by = 0.0
        if rule is not None and rule.in_webhook and isinstance(rule.code, int):
            self._take_rule(record.to)
            failure = rule.code
        elif rule is not None and rule.code == "slow":
            self._take_rule(record.to)
            late_by = rule.hold_seconds
        elif template is None and not await self._window_open(record.to, phone_number_id):
            failure = WINDOW_CLOSED
        category = template.category.value.lower() if template else "service"
        if marketing:
            category = "marketing_lite"  # how Meta prices the Marketing Messages API
        self._notify(record, category, failure)
        if late_by:
            await asyncio.sleep(late_by)
        message: dict[str, Any] = {"id": wamid}
        if body.type == "template":
            message["message_status"] = "accepted"
        return _json(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": record.to, "wa_id": record.to}],
                "messages": [message],
            },
        )

    async def _check(
        self, phone_number_id: str, authorization: str | None, raw: bytes, record: Received
    ) -> tuple[Answer | None, SendBody | None, Template | None]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return (
                graph_error(
                    190,
                    status=401,
                    message="Invalid OAuth access token - Cannot parse access token",
                ),
                None,
                None,
            )
        if self._access_token and not hmac.compare_digest(token, self._access_token):
            return graph_error(190, status=401, message="Error validating access token"), None, None
        if not await self._serves(phone_number_id):
            return (
                graph_error(
                    100,
                    subcode=33,
                    message=f"Unsupported post request. Object with ID '{phone_number_id}' "
                    "does not exist, cannot be loaded due to missing permissions, or does "
                    "not support this operation.",
                ),
                None,
                None,
            )
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return graph_error(100, "the request body is not JSON"), None, None
        if isinstance(document, dict):
            record.to = document.get("to") or document.get("recipient")
            record.type = document.get("type")
            record.reference = document.get("biz_opaque_callback_data")
        try:
            body = SendBody.model_validate(document)
        except ValidationError as error:
            issue = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in issue["loc"]) or "body"
            code = 131008 if issue["type"] == "missing" else 100
            return graph_error(code, f"{where}: {issue['msg']}"), None, None
        rule = self._peek_rule(body.address)
        if rule is not None and rule.answered_at_once:
            self._take_rule(body.address)
            return await self._fail_at_once(rule), None, None
        template = None
        if body.template is not None:
            found = await self._template(body.template.name, body.template.language.code)
            if found is None:
                return (
                    graph_error(
                        132001,
                        f"template name ({body.template.name}) does not exist in "
                        f"{body.template.language.code}",
                        status=404,
                    ),
                    None,
                    None,
                )
            given = len(body.template.body_parameters())
            if given != found.param_count:
                return (
                    graph_error(
                        132000,
                        f"body: number of localizable_params ({given}) does not match the "
                        f"expected number of params ({found.param_count})",
                    ),
                    None,
                    None,
                )
            if found.category.value == "AUTHENTICATION" and is_user_id(body.address):
                # Meta sends one-time codes to phone numbers only.
                return (
                    graph_error(
                        AUTHENTICATION_TO_USER_ID,
                        "authentication templates cannot be sent to a user id",
                    ),
                    None,
                    None,
                )
            template = found
        return None, body, template

    def _marketing_refusal(self, template: Template | None) -> Answer | None:
        """What the Marketing Messages API refuses: anything from a business that is not
        onboarded, and anything but a MARKETING template."""
        if not self.marketing_onboarded:
            return graph_error(
                10,
                NOT_ONBOARDED_DETAILS,
                status=403,
                message="(#10) Application does not have permission for this action",
            )
        if template is None or template.category.value != "MARKETING":
            return graph_error(100, "Only marketing template messages are supported.")
        return None

    async def change_template(self, name: str, language: str, **what: Any) -> Template | None:
        """Change a template as Meta would and post the webhooks Meta sends about it."""
        before = next(
            (t for t in self.templates.all() if (t.name, t.language) == (name, language)), None
        )
        after = self.templates.change(name, language, **what)
        if before is None or after is None:
            return None
        if self.webhook_url is not None and self._session is not None:
            for document in webhooks_for_change(self.waba_id, before, after):
                await self._post(json.dumps(document, separators=(",", ":")).encode())
        return after

    def _peek_rule(self, to: str) -> FailureRule | None:
        rules = self._rules.get(to)
        return rules[0].rule if rules else None

    async def _fail_at_once(self, rule: FailureRule) -> Answer:
        if rule.code == "timeout":
            await asyncio.sleep(rule.hold_seconds)
            return graph_error(131000, "answered too late")
        if rule.code == "garbage":
            return Answer(
                200, b"<html><body>Service temporarily unavailable</body></html>", "text/html"
            )
        assert isinstance(rule.code, int), "slow sends are answered, late"
        if 500 <= rule.code <= 599:
            return Answer(rule.code, b"<html><body>Upstream error</body></html>", "text/html")
        status = 404 if rule.code in _NOT_FOUND_CODES else 400
        return graph_error(rule.code, f"simulated failure {rule.code}", status=status)

    async def _template(self, name: str, language: str) -> Template | None:
        key = (name, language)
        cached = self._templates.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if self._store is None:
            return None
        async with self._store.read() as tx:
            template = await tx.templates.get(name, language)
        if template is not None:
            self._templates[key] = (template, time.monotonic() + 1.0)
        return template

    async def _serves(self, phone_number_id: str) -> bool:
        """Its own number, and every number registered in the store (each with its
        display number, for the notifications); any number without a store."""
        if phone_number_id == self.phone_number_id or phone_number_id in self._displays:
            return True  # (a number once registered stays: no store read per send)
        if self._store is None:
            return True
        async with self._store.read() as tx:
            number = await tx.numbers.get(phone_number_id)
        if number is None:
            return False
        self._displays[phone_number_id] = display_digits(number.display_phone_number)
        return True

    def display_of(self, phone_number_id: str) -> str:
        return self._displays.get(phone_number_id, self.display_phone_number)

    async def _window_open(self, address: str, phone_number_id: str) -> bool:
        """Meta's window: the customer wrote to this business number within 24 hours."""
        if self._store is None:
            return True
        async with self._store.read() as tx:
            contact = await tx.contacts.get(address)
            if contact is None:
                return False
            last = await last_inbound(tx, contact.id, phone_number_id)
        return window_open_at(last, self._clock.now())

    async def emit_quality_update(
        self,
        *,
        phone_number_id: str | None,
        event: str,
        current_limit: str | None = None,
        quality_rating: str | None = None,
    ) -> dict[str, Any]:
        """Post Meta's ``phone_number_quality_update`` for one of its numbers to the
        webhook (as Meta sends it: the number named by its display number); the
        notification posted."""
        number = phone_number_id or self.phone_number_id
        await self._serves(number)
        value: dict[str, Any] = {"display_phone_number": self.display_of(number), "event": event}
        if current_limit is not None:
            value["current_limit"] = current_limit
        if quality_rating is not None:
            value["quality_rating"] = quality_rating
        document = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "time": int(self._clock.now().timestamp()),
                    "changes": [{"value": value, "field": "phone_number_quality_update"}],
                }
            ],
        }
        if self.webhook_url is not None and self._session is not None:
            await self._post(json.dumps(document, separators=(",", ":")).encode())
        return document

    # -- status notifications -----------------------------------------------------

    def _notify(self, record: Received, category: str, failure: int | None) -> None:
        if self.webhook_url is None or self._session is None:
            return
        steps = ["failed"] if failure is not None else ["sent", "delivered"]
        if failure is None and self.read_receipts:
            steps.append("read")
        task = asyncio.create_task(self._post_statuses(record, steps, category, failure))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_statuses(
        self, record: Received, steps: list[str], category: str, failure: int | None
    ) -> None:
        for status in steps:
            await asyncio.sleep(self._delay)
            document = self.status_notification(record, status, category, failure)
            if await self._post(json.dumps(document, separators=(",", ":")).encode()):
                record.statuses.append(status)

    def status_notification(
        self, record: Received, status: str, category: str, failure: int | None = None
    ) -> dict[str, Any]:
        """Meta's notification of one status of a message we accepted."""
        assert record.wamid is not None
        entry: dict[str, Any] = {
            "id": record.wamid,
            "status": status,
            "timestamp": str(int(self._clock.now().timestamp())),
        }
        # Meta names a recipient known by a user id with recipient_user_id.
        entry["recipient_user_id" if is_user_id(record.to or "") else "recipient_id"] = record.to
        if record.reference is not None:
            entry["biz_opaque_callback_data"] = record.reference
        if status in ("sent", "delivered"):
            entry["pricing"] = {
                "billable": category != "service",
                "pricing_model": "PMP",
                "category": category,
                "type": "regular" if category != "service" else "free_customer_service",
            }
        if status == "failed" and failure is not None:
            entry["errors"] = [
                {
                    "code": failure,
                    "title": title_of(failure),
                    "message": title_of(failure),
                    "error_data": {"details": _failure_details(failure)},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/"
                    "support/error-codes/",
                }
            ]
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_of(record.phone_number_id),
                                    "phone_number_id": record.phone_number_id,
                                },
                                "statuses": [entry],
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    async def _post(self, body: bytes) -> bool:
        """Post one notification; retry what is not answered 2xx, as Meta does (it keeps
        trying for days; we for about a minute), honouring ``Retry-After``."""
        assert self._session is not None
        assert self.webhook_url is not None
        headers = {"Content-Type": "application/json"}
        if self.app_secret:
            headers[SIGNATURE_HEADER] = sign(body, self.app_secret)
        for attempt in range(POST_TRIES):
            pause = min(0.2 * 2**attempt, POST_MAX_PAUSE_SECONDS)
            try:
                async with self._session.post(
                    self.webhook_url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        return True
                    if response.status == 404 and not self._warned_404:
                        self._warned_404 = True
                        log.warning("the simulator's webhook %s answers 404", self.webhook_url)
                    pause = max(pause, _retry_after(response.headers.get("Retry-After")))
            except (aiohttp.ClientError, TimeoutError) as error:
                log.debug("posting a status to %s failed: %s", self.webhook_url, error)
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
        log.warning("the simulator gave up posting a notification to %s", self.webhook_url)
        return False


NOT_ONBOARDED_DETAILS = (
    "The business is not onboarded to the Marketing Messages API: accept its Terms of "
    "Service in WhatsApp Manager."
)


def _retry_after(header: str | None) -> float:
    try:
        return min(float(header), POST_MAX_PAUSE_SECONDS) if header else 0.0
    except ValueError:
        return 0.0


def _failure_details(code: int) -> str:
    if code == WINDOW_CLOSED:
        return (
            "Message failed to send because more than 24 hours have passed since the "
            "customer last replied to this number."
        )
    if code == MARKETING_STOPPED:
        return (
            "This recipient has chosen to stop receiving marketing messages on WhatsApp "
            "from your business."
        )
    return title_of(code)


def _error_of(answer: Answer) -> dict[str, Any]:
    try:
        error = json.loads(answer.body)["error"]
    except (ValueError, KeyError, TypeError):
        return {"http_status": answer.status, "body": answer.body.decode("utf-8", "replace")}
    return error if isinstance(error, dict) else {"http_status": answer.status}


def _new_wamid(to: str) -> str:
    raw = f"\x00\x0b{to}\x15\x02\x00\x11\x18\x12{uuid.uuid4().hex.upper()}\x00".encode()
    return "wamid." + base64.b64encode(raw).decode().rstrip("=")


# -- who may look and inject failures ----------------------------------------------


TokenCheck = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class ControlAccess:
    """Who may list what the simulator received and inject failures: whoever shows a
    token ``check`` accepts (the server's REST API token, rotated or not), or anyone
    when open (no check)."""

    check: TokenCheck | None

    @classmethod
    def open(cls) -> ControlAccess:
        return cls(None)

    @classmethod
    def of_token(cls, token: str | None) -> ControlAccess:
        """Behind one fixed ``token``; open without one."""
        if not token:
            return cls(None)
        expected = hashlib.sha256(token.encode()).digest()

        async def check(given: str) -> bool:
            return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), expected)

        return cls(check)

    @property
    def is_open(self) -> bool:
        return self.check is None

    async def allows(self, authorization: str | None) -> bool:
        if self.check is None:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and await self.check(token)


# -- routes -----------------------------------------------------------------------

SIMULATOR = web.AppKey("simulator", Simulator)
SIMULATOR_CONTROL = web.AppKey("simulator_control", ControlAccess)
"""Who may use the inspection and failure routes; unset: nobody."""
routes = web.RouteTableDef()
Route = Callable[[web.Request], Awaitable[web.Response]]


def _controlled(handler: Route) -> Route:
    """The route needs the REST API token (see :class:`ControlAccess`)."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.Response:
        access = request.app.get(SIMULATOR_CONTROL)
        if access is None or not await access.allows(request.headers.get("Authorization")):
            return web.json_response(
                {
                    "error": {
                        "code": "unauthorized",
                        "message": "a valid API token is required: "
                        "Authorization: Bearer <API_TOKEN>",
                    }
                },
                status=401,
            )
        return await handler(request)

    return checked


@routes.post(SIMULATOR_PREFIX + r"/{version:v\d+\.\d+}/{phone_number_id}/messages")
async def send_message(request: web.Request) -> web.Response:
    answer = await request.app[SIMULATOR].handle_send(
        request.match_info["phone_number_id"],
        request.headers.get("Authorization"),
        await request.read(),
    )
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


@routes.post(SIMULATOR_PREFIX + r"/{version:v\d+\.\d+}/{phone_number_id}/marketing_messages")
async def send_marketing_message(request: web.Request) -> web.Response:
    answer = await request.app[SIMULATOR].handle_send(
        request.match_info["phone_number_id"],
        request.headers.get("Authorization"),
        await request.read(),
        marketing=True,
    )
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


def _unauthorized() -> web.Response:
    answer = graph_error(190, status=401, message="Error validating access token")
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


def _media_not_found(media_id: str) -> web.Response:
    answer = graph_error(
        100,
        subcode=33,
        message=f"Unsupported get request. Object with ID '{media_id}' does not exist",
    )
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


@routes.get(SIMULATOR_PREFIX + r"/{version:v\d+\.\d+}/{waba_id}/message_templates")
async def message_templates(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        answer = graph_error(190, status=401, message="Invalid OAuth access token")
        return web.Response(status=answer.status, body=answer.body, content_type="application/json")
    if request.match_info["waba_id"] != simulator.waba_id:
        answer = graph_error(
            100,
            subcode=33,
            message=f"Unsupported get request. Object with ID '{request.match_info['waba_id']}' "
            "does not exist, cannot be loaded due to missing permissions, or does not "
            "support this operation.",
        )
        return web.Response(status=answer.status, body=answer.body, content_type="application/json")
    try:
        limit = int(request.query.get("limit", "25"))
        page = simulator.templates.page(
            base_url=str(request.url.with_query(None)),
            limit=limit,
            after=request.query.get("after"),
        )
    except ValueError as error:
        answer = graph_error(100, str(error))
        return web.Response(status=answer.status, body=answer.body, content_type="application/json")
    return web.json_response(page)


class TemplateChangeRequest(BaseModel):
    """``PUT /simulator/templates/{name}/{language}``: change a template as Meta would."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str | None = Field(default=None, pattern=r"^[A-Z_]{1,40}$")
    category: TemplateCategory | None = None
    quality_score: str | None = Field(default=None, pattern=r"^(GREEN|YELLOW|RED|UNKNOWN)$")


def _invalid(error: ValidationError) -> web.Response:
    fields = [
        {"field": ".".join(str(p) for p in issue["loc"]) or "body", "message": issue["msg"]}
        for issue in error.errors(include_url=False)
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return web.json_response(
        {"error": {"code": "invalid_request", "message": message, "fields": fields}},
        status=422,
    )


@routes.put(SIMULATOR_PREFIX + "/templates/{name}/{language}")
@_controlled
async def change_template(request: web.Request) -> web.Response:
    try:
        change = TemplateChangeRequest.model_validate_json(await request.read())
    except ValidationError as error:
        return _invalid(error)
    name, language = request.match_info["name"], request.match_info["language"]
    changed = await request.app[SIMULATOR].change_template(
        name, language, **change.model_dump(exclude_none=True)
    )
    if changed is None:
        return web.json_response(
            {"error": {"code": "not_found", "message": f"no template {name} ({language})"}},
            status=404,
        )
    return web.json_response(meta_template(changed, template_id=changed.id or ""))


class MarketingMessagesSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    onboarded: bool


@routes.put(SIMULATOR_PREFIX + "/marketing-messages")
@_controlled
async def set_marketing_messages(request: web.Request) -> web.Response:
    try:
        wanted = MarketingMessagesSettings.model_validate_json(await request.read())
    except ValidationError as error:
        return _invalid(error)
    request.app[SIMULATOR].marketing_onboarded = wanted.onboarded
    return web.json_response(wanted.model_dump())


@routes.post(SIMULATOR_PREFIX + r"/{version:v\d+\.\d+}/{phone_number_id}/media")
async def upload_media(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    if not simulator.authorized(request.headers.get("Authorization")):
        return _unauthorized()
    stored = await _read_media_form(request)
    if stored is None:
        answer = graph_error(100, message="Param file must be a file with a valid mime type")
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type
        )
    return web.json_response({"id": stored.id})


@routes.get(SIMULATOR_PREFIX + r"/{version:v\d+\.\d+}/{media_id:\d+}")
async def media_url(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    if not simulator.authorized(request.headers.get("Authorization")):
        return _unauthorized()
    media = simulator.media(request.match_info["media_id"])
    if media is None:
        return _media_not_found(request.match_info["media_id"])
    url = f"{request.url.origin()}{SIMULATOR_PREFIX}/media-download/{media.id}"
    return web.json_response(media.about(url))


@routes.get(SIMULATOR_PREFIX + r"/media-download/{media_id:\d+}")
async def download_media(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    if not simulator.authorized(request.headers.get("Authorization")):
        return _unauthorized()
    media = simulator.media(request.match_info["media_id"])
    if media is None:
        return _media_not_found(request.match_info["media_id"])
    return web.Response(body=media.content, content_type=media.mime_type)


@routes.post(SIMULATOR_PREFIX + "/customer-media")
@_controlled
async def customer_media(request: web.Request) -> web.Response:
    """A file a customer is about to send (``customer-says --image``): the simulator keeps
    it, as Meta does, and answers the id the message notification carries."""
    stored = await _read_media_form(request)
    if stored is None:
        return web.json_response(
            {"error": {"code": "invalid_request", "message": "file: send a file"}}, status=422
        )
    return web.json_response(
        {"id": stored.id, "mime_type": stored.mime_type, "sha256": stored.sha256}, status=201
    )


async def _read_media_form(request: web.Request) -> StoredMedia | None:
    """The ``file`` (and ``type``) of a multipart upload, read part by part: the app's
    body limit (``client_max_size``) is for whole-body reads, files may be larger."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        return None
    content: bytes | None = None
    mime = filename = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader):
            continue
        if part.name == "file":
            content = await part.read()
            filename = part.filename
            mime = mime or part.headers.get("Content-Type")
            if len(content) > MAX_MEDIA_BYTES:
                return None
        elif part.name == "type":
            mime = (await part.text()).strip() or mime
    if content is None:
        return None
    return request.app[SIMULATOR].add_media(
        content, mime_type=mime or "application/octet-stream", filename=filename
    )


@routes.get(SIMULATOR_PREFIX + "/messages")
@_controlled
async def list_received(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    to = request.query.get("to")
    return web.json_response({"messages": [r.as_json() for r in simulator.received(to)]})


@routes.delete(SIMULATOR_PREFIX + "/messages")
@_controlled
async def clear_received(request: web.Request) -> web.Response:
    request.app[SIMULATOR].clear_received()
    return web.Response(status=204)


@routes.get(SIMULATOR_PREFIX + "/stats")
@_controlled
async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIMULATOR].stats())


@routes.post(SIMULATOR_PREFIX + "/failures")
@_controlled
async def add_failure(request: web.Request) -> web.Response:
    try:
        rule = FailureRule.model_validate_json(await request.read())
    except ValidationError as error:
        fields = [
            {"field": ".".join(str(p) for p in issue["loc"]) or "body", "message": issue["msg"]}
            for issue in error.errors(include_url=False)
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return web.json_response(
            {"error": {"code": "invalid_request", "message": message, "fields": fields}},
            status=422,
        )
    request.app[SIMULATOR].add_failure(rule)
    return web.json_response(rule.model_dump(), status=201)


class QualityEmit(BaseModel):
    """What ``POST /simulator/quality`` makes Meta say about a business number."""

    model_config = ConfigDict(extra="forbid")

    phone_number_id: str | None = Field(default=None, description="default: its own number")
    event: Literal[
        "FLAGGED", "UNFLAGGED", "UPGRADE", "DOWNGRADE", "ONBOARDING", "THROUGHPUT_UPGRADE"
    ]
    current_limit: LimitTier | None = None
    quality_rating: Quality | None = None


@routes.post(SIMULATOR_PREFIX + "/quality")
@_controlled
async def emit_quality_update(request: web.Request) -> web.Response:
    try:
        asked = QualityEmit.model_validate_json(await request.read())
    except ValidationError as error:
        fields = [
            {"field": ".".join(str(p) for p in issue["loc"]) or "body", "message": issue["msg"]}
            for issue in error.errors(include_url=False)
        ]
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return web.json_response(
            {"error": {"code": "invalid_request", "message": message, "fields": fields}},
            status=422,
        )
    document = await request.app[SIMULATOR].emit_quality_update(
        phone_number_id=asked.phone_number_id,
        event=asked.event,
        current_limit=asked.current_limit.value if asked.current_limit else None,
        quality_rating=asked.quality_rating.value if asked.quality_rating else None,
    )
    return web.json_response(document, status=202)


@routes.get(SIMULATOR_PREFIX + "/failures")
@_controlled
async def list_failures(request: web.Request) -> web.Response:
    return web.json_response(
        {"failures": [rule.model_dump() for rule in request.app[SIMULATOR].failures()]}
    )


@routes.delete(SIMULATOR_PREFIX + "/failures")
@_controlled
async def clear_failures(request: web.Request) -> web.Response:
    request.app[SIMULATOR].clear_failures()
    return web.Response(status=204)


# -- standalone -------------------------------------------------------------------


def create_simulator_app(simulator: Simulator, *, api_token: str | None) -> web.Application:
    """The simulator alone, e.g. in its own process for benchmarks; its inspection and
    failure routes need ``api_token`` (None: open to anyone)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[SIMULATOR] = simulator
    app[SIMULATOR_CONTROL] = ControlAccess.of_token(api_token)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await simulator.start()
        yield
        await simulator.close()

    app.cleanup_ctx.append(lifetime)
    app.add_routes(routes)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Cloud API simulator on its own.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="the store whose template catalogue and windows it checks",
    )
    parser.add_argument(
        "--phone-number-id", default=os.environ.get("WA_PHONE_NUMBER_ID", "100000000000001")
    )
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--app-secret", default=os.environ.get("WA_APP_SECRET"))
    parser.add_argument(
        "--api-token",
        default=os.environ.get("API_TOKEN"),
        help="the Bearer token its inspection and failure routes need (default: API_TOKEN; "
        "without one they are open to anyone)",
    )
    parser.add_argument(
        "--access-token",
        default=SIMULATOR_TOKEN,
        help="the Bearer token its send endpoint takes (default: what our sender posts "
        "without WA_ACCESS_TOKEN)",
    )
    parser.add_argument(
        "--status-delay-seconds", type=float, default=0.05, help="pause between statuses"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    async def serve() -> None:
        store = await open_store(args.database_url) if args.database_url else None
        simulator = Simulator(
            store=store,
            clock=SystemClock(),
            phone_number_id=args.phone_number_id,
            webhook_url=args.webhook_url,
            app_secret=args.app_secret,
            access_token=args.access_token,
            status_delay_seconds=args.status_delay_seconds,
        )
        app = create_simulator_app(simulator, api_token=args.api_token)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        print(
            f"simulator listening on http://{args.host}:{args.port}{SIMULATOR_PREFIX}", flush=True
        )
        if not args.api_token:
            print(
                "the simulator is OPEN: anyone who can reach it may list what it received "
                "and inject failures (give --api-token or API_TOKEN to close it)",
                flush=True,
            )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            if store is not None:
                await store.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()

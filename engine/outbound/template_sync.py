"""The template catalogue synced from Meta (``GET /{WA_WABA_ID}/message_templates``).

Every template of the WhatsApp Business Account is read, page after page, and then
written in one transaction: new ones added, changed ones (status, category, quality,
content) replaced, the rest left as they are. A template Meta lists that the catalogue
cannot hold (no text body, named parameters, a category we do not know) is skipped and
said so; one the catalogue holds with a Meta id that Meta no longer lists is reported
``missing`` and left as it is. A Graph error changes nothing: it is logged and counted,
and the next sync tries again.

:class:`TemplateSync` is the background part that syncs at start and every
``TEMPLATE_SYNC_MINUTES`` (:mod:`engine.background`); ``POST /api/v1/templates/sync``
syncs at once and answers with the :class:`SyncReport`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from engine.background import Backoff, Health, keep_running, stop_within
from engine.models.template import Template
from engine.store import Store, Tx
from engine.whatsapp.client import CloudApiClient
from engine.whatsapp.send_errors import SendError
from engine.whatsapp.templates import normal_language, template_from_meta

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Skipped:
    name: str
    language: str
    reason: str


@dataclass(slots=True)
class SyncReport:
    """What a sync changed."""

    added: list[str] = field(default_factory=list)
    """``name/language`` of the templates added."""
    changed: list[dict[str, Any]] = field(default_factory=list)
    """Each changed template with what changed: ``{"template", "changes": {field: [was, is]}}``."""
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Templates with a Meta id that Meta no longer lists (left as they are)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "skipped": [
                {"name": s.name, "language": s.language, "reason": s.reason} for s in self.skipped
            ],
            "missing": self.missing,
        }


_COMPARED = ("status", "category", "quality_score", "id", "body", "header", "footer", "buttons")


def _differences(was: Template, now: Template) -> dict[str, list[Any]]:
    before, after = was.model_dump(mode="json"), now.model_dump(mode="json")
    return {key: [before[key], after[key]] for key in _COMPARED if before[key] != after[key]}


async def _apply(tx: Tx, documents: list[dict[str, Any]]) -> SyncReport:
    """The store job of a sync: pure (it may be run again on a serialization failure)."""
    report = SyncReport()
    listed: set[str] = set()
    for document in documents:
        name = str(document.get("name", ""))
        language = normal_language(str(document.get("language", "")))
        key = f"{name}/{language}"
        local = await tx.templates.get(name, language)
        try:
            template = template_from_meta(document, local=local)
        except ValueError as error:
            report.skipped.append(Skipped(name, language, str(error)))
            continue
        if template.id:
            listed.add(template.id)
        if local is None:
            report.added.append(key)
        elif local == template:
            report.unchanged += 1
            continue
        else:
            report.changed.append({"template": key, "changes": _differences(local, template)})
        await tx.templates.put(template)
    for template in await tx.templates.list():
        if template.id and template.id not in listed:
            report.missing.append(f"{template.name}/{template.language}")
    return report


async def sync_templates(store: Store, client: CloudApiClient, waba_id: str) -> SyncReport:
    """Read every template of ``waba_id`` from Meta and bring the catalogue in line;
    a :class:`SendError` (nothing changed) when Meta cannot be read."""
    documents = await client.message_templates(waba_id)
    return await store.write(lambda tx: _apply(tx, documents))


class TemplateSyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.syncs = Counter(
            "optinflow_template_syncs",
            "Template catalogue syncs from Meta, by result (synced, failed).",
            ["result"],
            registry=registry,
        )


_RETRY = Backoff(first=0.5, maximum=60.0)
"""The pause after a failed sync: doubling up to a minute (or ``every``, when shorter)."""


class TemplateSync:
    """Syncs the catalogue at start and every ``every``; a sync that fails is logged and
    counted, and tried again after a short, growing pause."""

    def __init__(
        self,
        store: Store,
        client: CloudApiClient,
        waba_id: str,
        *,
        every: timedelta,
        health: Health,
        metrics: TemplateSyncMetrics,
        stop_grace: float = 8.0,
    ) -> None:
        self._store = store
        self._client = client
        self._waba_id = waba_id
        self._every = every.total_seconds()
        self._metrics = metrics
        self._stop_grace = stop_grace
        self._beat = health.heartbeat(
            "template_sync", stall_after=max(health.stall_seconds, 3 * self._every)
        )
        self.task: asyncio.Task[None] | None = None
        self.last: SyncReport | None = None
        self._failures = 0

    async def sync(self) -> SyncReport:
        """One sync now; a :class:`SendError` when Meta cannot be read (logged, counted)."""
        try:
            report = await sync_templates(self._store, self._client, self._waba_id)
        except SendError as error:
            self._metrics.syncs.labels("failed").inc()
            log.error(
                "could not sync the templates of %s from Meta (the catalogue is unchanged; "
                "the next sync tries again): %s",
                self._waba_id,
                error,
            )
            raise
        self._metrics.syncs.labels("synced").inc()
        self.last = report
        log.info(
            "synced templates from Meta: %d added, %d changed, %d unchanged, %d skipped",
            len(report.added),
            len(report.changed),
            report.unchanged,
            len(report.skipped),
        )
        for skipped in report.skipped:
            log.warning(
                "template %s (%s) from Meta not taken: %s",
                skipped.name,
                skipped.language,
                skipped.reason,
            )
        return report

    async def _round(self) -> None:
        try:
            await self.sync()
        except SendError:
            # Logged and counted. Meta (or the network, or the simulator still starting
            # beside us) is asked again soon, not only at the next interval, so one
            # failed sync at start does not leave the catalogue stale for its length.
            self._failures += 1
            await self._beat.pause(min(self._every, _RETRY.after(self._failures)))
            return
        self._failures = 0
        await self._beat.pause(self._every)

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(keep_running(self._beat, self._round), name="template-sync")
        return self.task

    async def stop(self) -> None:
        if self.task is not None:
            await stop_within(self._beat, self.task, self._stop_grace)

"""Template webhooks: Meta paused, disabled, reinstated, re-rated or recategorised a
template. The catalogue follows at once, in the webhook's transaction:

- a status update sets the template's status (a paused or disabled template is then not
  sent; approved again, the messages waiting for it are due);
- a quality update sets its quality score;
- a completed category update sets its category, which the send rules read at send time
  (queued messages included); a notice that the category *will* change is only logged;
  a category we do not know is logged and ignored.

A template the catalogue does not hold is kept aside as unknown (no error): a sync
brings its content later.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from engine.models.template import Template, TemplateCategory
from engine.store import Tx
from engine.store.templates import UnknownTemplate
from engine.whatsapp.templates import TemplateChange

log = logging.getLogger(__name__)


class TemplateResult(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    UNKNOWN = "unknown"  # kept aside: the catalogue does not hold the template
    IGNORED = "ignored"  # nothing we can apply (an unknown category, a notice)


async def _find(tx: Tx, change: TemplateChange) -> Template | None:
    if change.meta_id is not None:
        template = await tx.templates.get_by_meta_id(change.meta_id)
        if template is not None:
            return template
    if change.name is not None and change.language is not None:
        return await tx.templates.get(change.name, change.language)
    return None


def _category(value: str | None) -> TemplateCategory | None:
    try:
        return TemplateCategory(value) if value else None
    except ValueError:
        return None


async def apply_template_change(tx: Tx, change: TemplateChange, *, now: datetime) -> TemplateResult:
    template = await _find(tx, change)
    named = f"{change.name or '?'} ({change.language or '?'}, id {change.meta_id or '?'})"
    if change.impending_category is not None:
        log.info(
            "Meta will recategorise template %s as %s in 24 hours",
            named,
            change.impending_category,
        )
        return TemplateResult.IGNORED
    if change.category is not None and _category(change.category) is None:
        log.warning(
            "ignored %s: template %s moved to category %r, which we do not know",
            change.field,
            named,
            change.category,
        )
        return TemplateResult.IGNORED
    if template is None:
        if change.name is None or change.language is None:
            log.warning("ignored %s about template id %s we do not know", change.field, named)
            return TemplateResult.IGNORED
        log.warning("%s about template %s, which the catalogue does not hold", change.field, named)
        await tx.templates.remember_unknown(
            UnknownTemplate(
                name=change.name,
                language=change.language,
                meta_id=change.meta_id,
                status=change.status,
                category=change.category,
                quality_score=change.quality_score,
                updated_at=now,
            )
        )
        return TemplateResult.UNKNOWN
    updates: dict[str, Any] = {}
    if change.status is not None:
        updates["status"] = change.status
    if change.quality_score is not None:
        updates["quality_score"] = change.quality_score
    if change.category is not None:
        updates["category"] = change.category
    if change.meta_id is not None and template.id is None:
        updates["id"] = change.meta_id
    try:
        changed = Template.model_validate({**template.model_dump(), **updates})
    except ValidationError as error:
        log.warning("ignored %s for template %s: %s", change.field, named, error)
        return TemplateResult.IGNORED
    if changed == template:
        return TemplateResult.UNCHANGED
    await tx.templates.put(changed)
    log.info(
        "template %s (%s) is now %s, %s, quality %s (%s%s)",
        changed.name,
        changed.language,
        changed.status,
        changed.category,
        changed.quality_score or "unknown",
        change.field,
        f": {change.reason}" if change.reason and change.reason != "NONE" else "",
    )
    return TemplateResult.APPLIED

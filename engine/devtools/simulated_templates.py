"""The simulator's WhatsApp Business Account templates, as Meta keeps them.

They are read from the template file (``TEMPLATES_FILE``, ``fixtures/templates.yaml``)
and served like Meta's ``GET /{version}/{waba_id}/message_templates``: a page of
``limit`` templates at a time with ``paging.cursors`` and, while more follow,
``paging.next``. A template may be changed as Meta would change it (paused, disabled,
reinstated, recategorised, re-rated: :meth:`SimulatedTemplates.change`), which gives the
webhook Meta would send about it (:func:`template_webhook`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from engine.catalogue import load_templates
from engine.models.template import Template
from engine.whatsapp.templates import (
    CATEGORY_UPDATE,
    QUALITY_UPDATE,
    STATUS_UPDATE,
    meta_template,
)

MAX_PAGE = 100


def template_id(template: Template) -> str:
    """A stable, Meta-like id for a template of the file."""
    digest = hashlib.sha256(f"{template.name}/{template.language}".encode()).hexdigest()
    return str(int(digest[:13], 16))


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode().rstrip("=")


def _index(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    return int(base64.urlsafe_b64decode(padded).decode())


@dataclass(slots=True)
class SimulatedTemplates:
    path: Path | None
    changes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """What was changed of each template since the file was written (Meta's side)."""

    def all(self) -> list[Template]:
        if self.path is None or not self.path.exists():
            return []
        found = []
        for template in load_templates(self.path):
            changed = self.changes.get((template.name, template.language), {})
            found.append(template.model_copy(update={"id": template_id(template), **changed}))
        return found

    def page(self, *, base_url: str, limit: int, after: str | None) -> dict[str, Any]:
        """One page of Meta's answer; ValueError for a cursor it never gave."""
        templates = self.all()
        start = _index(after) if after else 0
        if not 0 <= start <= len(templates):
            raise ValueError("after: not a cursor of this list")
        size = max(1, min(limit, MAX_PAGE))
        chunk = templates[start : start + size]
        document: dict[str, Any] = {
            "data": [meta_template(t, template_id=template_id(t)) for t in chunk]
        }
        if chunk:
            paging: dict[str, Any] = {
                "cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}
            }
            if start + len(chunk) < len(templates):
                query = urlencode({"limit": size, "after": _cursor(start + len(chunk))})
                paging["next"] = f"{base_url}?{query}"
            document["paging"] = paging
        return document

    def change(self, name: str, language: str, **what: Any) -> Template | None:
        """Change a template as Meta would; None when the file has no such template."""
        key = (name, language)
        known = next((t for t in self.all() if (t.name, t.language) == key), None)
        if known is None:
            return None
        self.changes.setdefault(key, {}).update(
            {field_: value for field_, value in what.items() if value is not None}
        )
        return next(t for t in self.all() if (t.name, t.language) == key)


def template_webhook(
    waba_id: str, field_: str, template: Template, value: dict[str, Any]
) -> dict[str, Any]:
    """A template webhook of ``field_`` about ``template`` in Meta's shape."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "time": int(time.time()),
                "changes": [
                    {
                        "field": field_,
                        "value": {
                            "message_template_id": int(template.id or template_id(template)),
                            "message_template_name": template.name,
                            "message_template_language": template.language,
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def webhooks_for_change(waba_id: str, before: Template, after: Template) -> list[dict[str, Any]]:
    """The webhooks Meta sends when a template goes from ``before`` to ``after``."""
    found = []
    if after.status != before.status:
        value: dict[str, Any] = {"event": after.status, "reason": "NONE"}
        if after.status == "DISABLED":
            value["disable_info"] = {"disable_date": int(time.time())}
        found.append(template_webhook(waba_id, STATUS_UPDATE, after, value))
    if after.category != before.category:
        value = {
            "previous_category": before.category.value,
            "new_category": after.category.value,
        }
        found.append(template_webhook(waba_id, CATEGORY_UPDATE, after, value))
    if after.quality_score != before.quality_score:
        value = {
            "previous_quality_score": before.quality_score or "UNKNOWN",
            "new_quality_score": after.quality_score or "UNKNOWN",
        }
        found.append(template_webhook(waba_id, QUALITY_UPDATE, after, value))
    return found

"""Templates as Meta describes them: the Graph API's template objects
(``GET /{waba_id}/message_templates``) and the template webhooks.

A template object::

    {"id": "594425479261596", "name": "order_update", "language": "en_US",
     "status": "APPROVED", "category": "UTILITY", "quality_score": {"score": "GREEN"},
     "components": [{"type": "HEADER", "format": "TEXT", "text": "Your order"},
                    {"type": "BODY", "text": "Your order {{1}} is {{2}}."},
                    {"type": "FOOTER", "text": "Thanks"},
                    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Help"}]}]}

:func:`template_from_meta` reads one into the catalogue's :class:`Template` (and
:func:`meta_template` writes one, for the simulator). The webhooks
``message_template_status_update``, ``message_template_quality_update`` and
``template_category_update`` name a template by ``message_template_id``,
``message_template_name`` and ``message_template_language`` (which Meta writes
``en-US`` or ``en_US``); :func:`template_change` reads their ``value``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from engine.models.template import (
    ButtonType,
    Template,
    TemplateButton,
    TemplateCategory,
)

STATUS_UPDATE = "message_template_status_update"
QUALITY_UPDATE = "message_template_quality_update"
CATEGORY_UPDATE = "template_category_update"
TEMPLATE_FIELDS = frozenset({STATUS_UPDATE, QUALITY_UPDATE, CATEGORY_UPDATE})


def normal_language(code: str) -> str:
    """A language code as the catalogue keys it: ``en-US`` → ``en_US``."""
    return code.strip().replace("-", "_")


def _component(components: list[Any], kind: str) -> dict[str, Any] | None:
    for component in components:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == kind:
            return component
    return None


def _buttons(buttons: list[Any], local: Template | None) -> tuple[TemplateButton, ...]:
    """Meta's buttons; a quick reply keeps the payload the local entry gave the button of
    the same text (Meta's template carries none: it is given at send time)."""
    payloads = {
        b.text: b.payload for b in (local.buttons if local else ()) if b.payload is not None
    }
    found: list[TemplateButton] = []
    for button in buttons:
        if not isinstance(button, dict):
            continue
        kind = str(button.get("type", "")).upper()
        if kind not in ButtonType.__members__:
            continue  # COPY_CODE, OTP, FLOW, ...: sent without parameters of ours
        text = str(button.get("text", ""))
        found.append(
            TemplateButton(
                type=ButtonType(kind),
                text=text,
                payload=payloads.get(text) if kind == ButtonType.QUICK_REPLY else None,
                url=button.get("url"),
                phone_number=button.get("phone_number"),
            )
        )
    return tuple(found)


def template_from_meta(document: dict[str, Any], *, local: Template | None = None) -> Template:
    """One of Meta's template objects as a catalogue entry; ValueError saying why when it
    cannot be one (no body, a category we do not know, named parameters, ...)."""
    components = document.get("components")
    components = components if isinstance(components, list) else []
    body = _component(components, "BODY")
    header = _component(components, "HEADER")
    footer = _component(components, "FOOTER")
    buttons = _component(components, "BUTTONS")
    quality = document.get("quality_score")
    score = quality.get("score") if isinstance(quality, dict) else quality
    ttl = document.get("message_send_ttl_seconds")
    header_text = None
    if header is not None and str(header.get("format", "TEXT")).upper() == "TEXT":
        header_text = header.get("text")
    try:
        return Template(
            name=str(document.get("name", "")),
            language=normal_language(str(document.get("language", ""))),
            category=TemplateCategory(str(document.get("category", "")).upper()),
            body=str(body.get("text", "")) if body else "",
            header=header_text,
            footer=footer.get("text") if footer else None,
            buttons=_buttons(buttons.get("buttons") or [], local) if buttons else (),
            id=str(document["id"]) if document.get("id") is not None else None,
            status=str(document.get("status", "")).upper() or "PENDING",
            quality_score=str(score).upper() if score else None,
            components=tuple(c for c in components if isinstance(c, dict)),
            message_send_ttl_seconds=ttl if isinstance(ttl, int) else None,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in issue['loc']) or 'template'}: {issue['msg']}"
            for issue in error.errors(include_url=False)
        )
        raise ValueError(problems) from None
    except ValueError as error:  # the category
        raise ValueError(f"category: {error}") from None


def meta_template(template: Template, *, template_id: str) -> dict[str, Any]:
    """A catalogue entry as Meta lists it (the simulator's answer)."""
    components: list[dict[str, Any]] = []
    if template.header:
        components.append({"type": "HEADER", "format": "TEXT", "text": template.header})
    components.append({"type": "BODY", "text": template.body})
    if template.footer:
        components.append({"type": "FOOTER", "text": template.footer})
    if template.buttons:
        components.append(
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        key: value
                        for key, value in (
                            ("type", b.type.value),
                            ("text", b.text),
                            ("url", b.url),
                            ("phone_number", b.phone_number),
                        )
                        if value is not None
                    }
                    for b in template.buttons
                ],
            }
        )
    document: dict[str, Any] = {
        "name": template.name,
        "parameter_format": "POSITIONAL",
        "components": components,
        "language": template.language,
        "status": template.status,
        "category": template.category.value,
        "id": template.id or template_id,
    }
    if template.quality_score:
        document["quality_score"] = {"score": template.quality_score}
    if template.message_send_ttl_seconds is not None:
        document["message_send_ttl_seconds"] = template.message_send_ttl_seconds
    return document


@dataclass(frozen=True, slots=True)
class TemplateChange:
    """What one template webhook says: which template, and what changed (None: not this)."""

    field: str
    meta_id: str | None
    name: str | None
    language: str | None
    status: str | None = None
    reason: str | None = None
    quality_score: str | None = None
    category: str | None = None
    """The template's category from now on (a completed recategorisation)."""
    impending_category: str | None = None
    """The category Meta will give the template in 24 hours (a notice only)."""


_STATUS_OF_EVENT = {"REINSTATED": "APPROVED", "UNARCHIVED": "APPROVED", "UNLOCKED": "APPROVED"}
"""Events that name what happened rather than the status it left the template in."""
_NO_STATUS_CHANGE = frozenset({"FLAGGED"})
"""Events after which the template keeps its status (flagged: still sent, at risk)."""


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def template_change(field: str, value: Any) -> TemplateChange | None:
    """The ``value`` of a template webhook, or None when it names no template."""
    if field not in TEMPLATE_FIELDS or not isinstance(value, dict):
        return None
    meta_id = _text(value.get("message_template_id"))
    name = _text(value.get("message_template_name"))
    language = _text(value.get("message_template_language"))
    if meta_id is None and (name is None or language is None):
        return None
    language = normal_language(language) if language else None

    def change(**what: str | None) -> TemplateChange:
        return TemplateChange(field, meta_id, name, language, **what)

    if field == STATUS_UPDATE:
        event = (_text(value.get("event")) or "").upper()
        status = None if event in _NO_STATUS_CHANGE else _STATUS_OF_EVENT.get(event, event)
        return change(
            status=status or None,
            reason=_text(value.get("reason")),
            category=None,
        )
    if field == QUALITY_UPDATE:
        score = _text(value.get("new_quality_score"))
        return change(quality_score=score.upper() if score else None)
    new = _text(value.get("new_category"))
    if "correct_category" in value:
        # Impending: new_category is still the current one; correct_category comes later.
        correct = _text(value.get("correct_category"))
        return change(impending_category=correct.upper() if correct else None)
    return change(category=new.upper() if new else None)

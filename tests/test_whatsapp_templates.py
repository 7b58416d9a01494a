"""Meta's template objects and template webhooks read into the catalogue's terms, from
Meta's own sample shapes (fixtures/webhooks/template_*.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.models.template import ButtonType, Template, TemplateButton, TemplateCategory
from engine.whatsapp.templates import (
    CATEGORY_UPDATE,
    QUALITY_UPDATE,
    STATUS_UPDATE,
    TemplateChange,
    meta_template,
    template_change,
    template_from_meta,
)
from engine.whatsapp.webhook import read_notification
from tests.conftest import FIXTURES

ID, NAME = "806312974732579", "order_update"


def change(field: str, **what: str | None) -> TemplateChange:
    return TemplateChange(field, ID, NAME, "en_US", **what)


SAMPLES: dict[str, TemplateChange] = {
    "template_status_paused": change(STATUS_UPDATE, status="PAUSED", reason="NONE"),
    "template_status_disabled": change(STATUS_UPDATE, status="DISABLED", reason="NONE"),
    "template_status_reinstated": change(STATUS_UPDATE, status="APPROVED", reason="NONE"),
    "template_quality_update": change(QUALITY_UPDATE, quality_score="YELLOW"),
    "template_category_update": change(CATEGORY_UPDATE, category="MARKETING"),
    "template_category_impending": change(CATEGORY_UPDATE, impending_category="MARKETING"),
}


@pytest.mark.parametrize(("sample", "expected"), sorted(SAMPLES.items()))
def test_metas_sample_webhooks_are_read(sample: str, expected: TemplateChange) -> None:
    raw = (FIXTURES / "webhooks" / f"{sample}.json").read_bytes()
    notification = read_notification(raw)
    assert list(notification.template_changes()) == [expected]
    assert list(notification.values()) == []  # no messages or statuses in it


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("APPROVED", "APPROVED"),
        ("REJECTED", "REJECTED"),
        ("PAUSED", "PAUSED"),
        ("DISABLED", "DISABLED"),
        ("REINSTATED", "APPROVED"),
        ("UNARCHIVED", "APPROVED"),
        ("ARCHIVED", "ARCHIVED"),
        ("PENDING_DELETION", "PENDING_DELETION"),
        ("FLAGGED", None),  # still sent, at risk: the status does not change
    ],
)
def test_status_events_give_the_status_they_leave(event: str, status: str | None) -> None:
    value = {"event": event, "message_template_id": 1, "message_template_name": "a"}
    value["message_template_language"] = "pt_BR"
    found = template_change(STATUS_UPDATE, value)
    assert found is not None
    assert (found.status, found.language) == (status, "pt_BR")


@pytest.mark.parametrize(
    "value",
    [
        "not an object",
        {},
        {"message_template_name": "only_a_name"},
        {"message_template_id": {"nested": 1}},
    ],
)
def test_a_webhook_naming_no_template_is_left_out(value: Any) -> None:
    assert template_change(STATUS_UPDATE, value) is None


# Meta's template object as GET /{waba_id}/message_templates lists it.
META_TEMPLATE: dict[str, Any] = {
    "name": "seasonal_promotion",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!"},
        {"type": "BODY", "text": "Shop now through {{1}} and use code {{2}} to get {{3}} off."},
        {"type": "FOOTER", "text": "Use the buttons below to manage your subscriptions"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Unsubscribe from Promos"},
                {"type": "URL", "text": "Shop", "url": "https://shop.example/{{1}}"},
            ],
        },
    ],
    "language": "en_US",
    "status": "APPROVED",
    "category": "MARKETING",
    "id": "546151681022936",
    "quality_score": {"score": "GREEN", "date": 1739321024},
    "message_send_ttl_seconds": 43200,
}


def test_a_meta_template_becomes_a_catalogue_entry() -> None:
    local = Template(
        name="seasonal_promotion",
        language="en_US",
        category=TemplateCategory.MARKETING,
        body="old body {{1}}",
        buttons=(
            TemplateButton(
                type=ButtonType.QUICK_REPLY, text="Unsubscribe from Promos", payload="STOP"
            ),
        ),
    )
    template = template_from_meta(META_TEMPLATE, local=local)
    assert (template.id, template.status, template.quality_score) == (
        "546151681022936",
        "APPROVED",
        "GREEN",
    )
    assert template.category is TemplateCategory.MARKETING
    assert template.body.startswith("Shop now through {{1}}")
    assert (template.header, template.param_count) == ("Our {{1}} is on!", 3)
    assert template.footer == "Use the buttons below to manage your subscriptions"
    # The quick reply keeps the payload the local entry gave it (Meta's has none).
    assert [(b.type, b.payload) for b in template.buttons] == [
        (ButtonType.QUICK_REPLY, "STOP"),
        (ButtonType.URL, None),
    ]
    assert template.components == tuple(META_TEMPLATE["components"])
    assert template.message_send_ttl_seconds == 43200


def test_the_simulator_lists_a_template_as_meta_does() -> None:
    template = template_from_meta(META_TEMPLATE)
    again = template_from_meta(meta_template(template, template_id="1"))
    assert again.model_dump(exclude={"components"}) == template.model_dump(exclude={"components"})


@pytest.mark.parametrize(
    ("change_of", "reason"),
    [
        ({"category": "PROMOTIONAL"}, "category"),
        ({"components": [{"type": "HEADER", "format": "IMAGE"}]}, "body"),
        (
            {"components": [{"type": "BODY", "text": "Hi {{first_name}}, {{2}}"}]},
            "placeholders",
        ),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_a_template_the_catalogue_cannot_hold_is_refused_saying_why(
    change_of: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        template_from_meta({**json.loads(json.dumps(META_TEMPLATE)), **change_of})

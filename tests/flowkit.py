"""Helpers for the flow tests: flow sets from YAML text, contacts, customer inputs."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.catalogue import load_templates
from engine.flows.flowset import FlowSet
from engine.flows.loader import parse_flow
from engine.flows.model import Flow
from engine.flows.validate import validate
from engine.models.contact import Contact
from engine.models.customer_input import CustomerInput, InputKind
from tests.conftest import FIXTURES

CATALOGUE = load_templates(FIXTURES / "templates.yaml")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def flow_of(text: str, file: str = "test.yaml") -> Flow:
    flow, problems = parse_flow(textwrap.dedent(text), file)
    assert not problems, problems
    assert flow is not None
    return flow


def flow_set(*texts: str, env: dict[str, str] | None = None) -> FlowSet:
    flows = [flow_of(text, f"flow{index}.yaml") for index, text in enumerate(texts)]
    problems = validate(flows, CATALOGUE)
    assert not problems, [str(p) for p in problems]
    return FlowSet.of(flows, CATALOGUE, env or {})


def contact(**changes: Any) -> Contact:
    values: dict[str, Any] = {
        "id": 1,
        "wa_id": "16505551234",
        "name": "Ann",
        "marketing_opt_in": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Contact(**values)


def text(body: str) -> CustomerInput:
    return CustomerInput(kind=InputKind.TEXT, text=body)


def tap(choice_id: str, title: str = "") -> CustomerInput:
    return CustomerInput(kind=InputKind.BUTTON, text=title or choice_id, choice_id=choice_id)


def write_flows(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(body))
    return folder

"""The JSON Schema generated from the models accepts the shipped flows and rejects
what the loader rejects (unknown fields and kinds, too many buttons)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.flows.loader import read_yaml
from engine.flows.model import STEP_KINDS
from engine.flows.schema import flow_schema
from tests.conftest import FIXTURES, ROOT


def document(path: str) -> Any:
    data, _, problems = read_yaml((ROOT / path).read_text(), path)
    assert not problems
    return data


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = flow_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("name", ["welcome", "consent", "order_status", "handoff"])
def test_the_shipped_flows_match_the_schema(validator: Draft202012Validator, name: str) -> None:
    assert [e.message for e in validator.iter_errors(document(f"flows/{name}.yaml"))] == []


@pytest.mark.parametrize("name", ["unknown_field", "unknown_step_kind", "many_problems"])
def test_invalid_flows_do_not_match(validator: Draft202012Validator, name: str) -> None:
    path = FIXTURES / "flows" / "invalid" / f"{name}.yaml"
    assert not validator.is_valid(document(str(path.relative_to(ROOT))))


def test_every_step_kind_is_in_the_schema_with_kind_required() -> None:
    definitions = flow_schema()["$defs"]
    for cls in STEP_KINDS.values():
        assert definitions[cls.__name__]["required"][0] == "kind"


def test_the_cli_prints_the_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "flows", "schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == flow_schema()

"""docs/flows.md shows an example of every step kind, and every example reads."""

from __future__ import annotations

import re

from engine.flows.loader import read_yaml
from engine.flows.model import STEP_KINDS
from tests.conftest import ROOT

BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def test_every_step_kind_has_an_example_that_validates() -> None:
    shown: set[str] = set()
    for block in BLOCK.findall((ROOT / "docs" / "flows.md").read_text("utf-8")):
        data, _, problems = read_yaml(block, "flows.md")
        assert not problems, problems
        if "steps" in data:
            continue  # the flow header example
        for body in data.values():
            STEP_KINDS[body["kind"]].model_validate(body)
            shown.add(body["kind"])
    assert shown == set(STEP_KINDS)

"""The validator: every invalid fixture is rejected with exactly its expected problems
and lines; the shipped flows validate; ``flows validate`` lists every error, exit 1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.flows import check_flows
from tests.conftest import FIXTURES, ROOT
from tests.flowkit import CATALOGUE

INVALID = FIXTURES / "flows" / "invalid"
EXPECT = re.compile(r"^# expect: (\d+): (.*)$")


def expected(entry: Path) -> list[tuple[str, int, str]]:
    files = sorted(entry.iterdir()) if entry.is_dir() else [entry]
    found = []
    for file in files:
        for line in file.read_text("utf-8").splitlines():
            match = EXPECT.match(line)
            if match:
                found.append((file.name, int(match[1]), match[2]))
    return sorted(found)


@pytest.mark.parametrize("entry", sorted(INVALID.iterdir()), ids=lambda p: p.stem)
def test_every_invalid_fixture_gets_its_expected_problems(entry: Path) -> None:
    want = expected(entry)
    assert want, f"{entry} says what it expects with '# expect: LINE: MESSAGE' comments"
    _, problems = check_flows([entry], CATALOGUE, relative_to=entry if entry.is_dir() else INVALID)
    assert sorted((p.file, p.line, p.message) for p in problems) == want


def test_there_is_a_fixture_for_every_rule() -> None:
    names = {entry.stem for entry in INVALID.iterdir()}
    assert {
        "unknown_step_kind",
        "unknown_field",
        "goto_missing_step",
        "unreachable_step",
        "branch_without_else",
        "ask_without_target",
        "template_not_in_catalogue",
        "jinja2_syntax_error",
        "loop_without_wait",
    } <= names


def test_the_shipped_flows_validate() -> None:
    flows, problems = check_flows([ROOT / "flows"], CATALOGUE)
    assert [str(p) for p in problems] == []
    assert {flow.id for flow in flows} == {"welcome", "consent", "order_status", "handoff"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "flows", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_cli_validate_lists_every_error_and_exits_1() -> None:
    result = run_cli(
        "validate",
        str(INVALID / "many_problems.yaml"),
        str(INVALID / "unknown_field.yaml"),
        "--templates",
        str(FIXTURES / "templates.yaml"),
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    # The four of many_problems, unknown_field's, and both files claim the keyword "hi".
    assert len(lines) == 6
    assert lines[0].startswith(f"{INVALID / 'many_problems.yaml'}:14: send step 'menu'")
    assert lines[-2].endswith(": a message can start one flow only")
    assert lines[-1].startswith(f"{INVALID / 'unknown_field.yaml'}:11: send step 'greet'")
    assert "6 problem(s) in 2 file(s)" in result.stderr


def test_cli_validate_passes_the_shipped_flows() -> None:
    result = run_cli("validate", "--templates", str(FIXTURES / "templates.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "4 flow(s) OK: consent, handoff, order_status, welcome"

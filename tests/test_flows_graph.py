"""``flows graph``: a Mermaid diagram with every step and every way out of it."""

from __future__ import annotations

import subprocess
import sys

from engine.flows.graph import mermaid
from tests.conftest import ROOT
from tests.flowkit import flow_of


def test_every_step_and_exit_is_drawn() -> None:
    flow = flow_of(
        """
        id: drawn
        name: Drawn
        steps:
          ask_it: {kind: ask, text: 'Say "yes"', save_as: a, timeout: {after: 1h, next: bye}}
          route:
            kind: branch
            cases: [{equals: "yes", next: bye}]
            else: other
          other: {kind: start, flow: drawn}
          bye: {kind: send, text: Bye}
        """
    )
    assert mermaid(flow) == (
        "flowchart TD\n"
        '  start(("drawn")) --> s0\n'
        '  s0(["ask_it · ask<br/>Say #quot;yes#quot;"])\n'
        '  s1{"route · branch"}\n'
        '  s2[["other · start<br/>drawn"]]\n'
        '  s3["bye · send<br/>Bye"]\n'
        '  s0 -->|"answer"| s1\n'
        '  s0 -->|"timeout"| s3\n'
        '  s1 -->|"equals yes"| s3\n'
        '  s1 -->|"else"| s2\n'
        '  s2 -.->|"start drawn"| f0\n'
        "  s3 --> finish\n"
        '  f0[["flow drawn"]]\n'
        '  finish(("end"))\n'
    )


def test_the_cli_draws_a_shipped_flow() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "flows", "graph", "consent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart TD\n")
    assert '-->|"invalid"|' in result.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "engine", "flows", "graph", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1
    assert "no flow 'nope'" in unknown.stdout

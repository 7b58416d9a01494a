"""Templates cannot burn the event loop, allocate without bound or change the contact:
each attack, written as a flow's text, ends the flow with an error event at once and
leaves the contact as it was."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.flows.events import (
    ContactAttributesChanged,
    ContactNameChanged,
    ContactTagsChanged,
    FlowError,
    MessageSent,
)
from engine.flows.runtime import Runtime, Trigger
from engine.flows.session import SessionStatus
from engine.flows.validate import warnings
from tests.conftest import FIXTURES, ROOT
from tests.flowkit import contact, flow_of, flow_set, text, write_flows

QUICK_SECONDS = 1.0  # the sandbox stops a render after ~0.1 s of work

ATTACKS = {
    "a huge power": ("{{ 9 ** (9 ** 8) }}", "MAX_INTEGER"),
    "a huge product": ("{{ (10 ** 60) * (10 ** 60) }}", "MAX_INTEGER"),
    "a huge text": ("{{ 'a' * 300000000 }}", "MAX_LENGTH"),
    "a huge list": ("{{ [0] * 300000000 }}", "MAX_LENGTH"),
    "texts added up": ("{{ 'a' * 9000 + 'b' * 9000 }}", "MAX_LENGTH"),
    "a huge range": ("{{ range(300000000) | list | length }}", "MAX_RANGE"),
    "a padded text": ("{{ 'a'.ljust(300000000) }}", "MAX_LENGTH"),
    "a wide format": ("{{ '{:>300000000}'.format(1) }}", "MAX_LENGTH"),
    "a wide percent": ("{{ '%300000000d' % 1 }}", "MAX_LENGTH"),
    "a wide filter": ("{{ 'a' | center(300000000) }}", "MAX_LENGTH"),
    "doubling by ~": (
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "MAX_LENGTH",
    ),
    "a long output": ("{% for i in range(10000) %}{{ 'a' * 10000 }}{% endfor %}", "MAX_LENGTH"),
    "nested loops": (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "MAX_RENDER_SECONDS",
    ),
    "updating attributes": ("{{ contact.attributes.update(tier='gold') }}", "unsafe"),
    "appending a tag": ("{{ contact.tags.append('vip') }}", "unsafe"),
    "changing a variable": ("{{ vars.update(plan='free') }}", "unsafe"),
}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_an_attack_ends_the_flow_with_an_error_quickly_and_changes_nothing(attack: str) -> None:
    source, limit = ATTACKS[attack]
    flows = flow_set(
        f"""
        id: attack
        name: Attack
        steps:
          remember: {{kind: set, vars: {{plan: gold}}}}
          poke: {{kind: send, text: {json.dumps(source)}}}
          after: {{kind: send, text: "not reached"}}
        """
    )
    who = contact(attributes={"tier": "silver"}, tags=("customer",))
    started = time.monotonic()
    session, events = Runtime(flows).start("attack", who, Trigger.manual(text("hi")))
    assert time.monotonic() - started < QUICK_SECONDS
    [error] = [event for event in events if isinstance(event, FlowError)]
    assert error.step == "poke"
    assert limit in error.message
    assert session.status is SessionStatus.FAILED
    assert session.contact == who
    changes = (ContactAttributesChanged, ContactNameChanged, ContactTagsChanged, MessageSent)
    assert not [event for event in events if isinstance(event, changes)]


def test_templates_within_the_limits_render_as_before() -> None:
    flows = flow_set(
        """
        id: fine
        name: Fine
        steps:
          hello:
            kind: send
            text: "{{ 2 ** 10 }} {{ '-' * 3 }} {{ [1] + [2] }} {{ 'a' ~ 'b' }} {{ '%03d' % 7 }}"
        """
    )
    _, events = Runtime(flows).start("fine", contact(), Trigger.manual(text("hi")))
    [message] = [event for event in events if isinstance(event, MessageSent)]
    assert message.content.body == "1024 --- [1, 2] ab 007"  # type: ignore[union-attr]


def test_validate_warns_about_powers_and_multiplied_text_literals() -> None:
    flow = flow_of(
        """
        id: risky
        name: Risky
        steps:
          power: {kind: send, text: "{{ vars.n ** 2 }}"}
          line:
            kind: send
            text: "{{ '=' * vars.width }}"
          fine: {kind: send, text: "{{ vars.n * 2 }}"}
        """,
        "risky.yaml",
    )
    assert [str(w) for w in warnings([flow])] == [
        "risky.yaml:5: warning: step 'power', `text`: the template raises to a power (`**`); "
        "a result too big stops the flow with an error when it runs",
        "risky.yaml:8: warning: step 'line', `text`: the template multiplies a text literal "
        "(`'...' * n`); a result too big stops the flow with an error when it runs",
    ]


def test_cli_validate_prints_warnings_and_still_passes(tmp_path: Path) -> None:
    folder = write_flows(
        tmp_path / "flows",
        risky="""
        id: risky
        name: Risky
        triggers: {keywords: [risky]}
        steps:
          power: {kind: send, text: "{{ 2 ** 8 }}"}
        """,
    )
    templates = str(FIXTURES / "templates.yaml")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "flows",
            "validate",
            str(folder),
            "--templates",
            templates,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder / 'risky.yaml'}:6: warning: step 'power'")
    assert lines[-1] == "1 flow(s) OK: risky"

"""Flow runtime speed: steps per second of the pure runtime, against a baseline.

The flow below answers every customer message with eight steps (two ``set``, two
``branch``, two ``send`` rendering jinja2, a ``goto`` and the ``ask`` that waits
again). The baseline, in the same process, is what those steps cannot avoid: the
same number of bare jinja2 renders of the same text with a compiled template.
Run: ``.venv/bin/python -m bench.flow_steps [--inputs 20000]``. Target: 20,000
steps per second or more on one core.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from datetime import UTC, datetime

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from engine.flows.flowset import FlowSet
from engine.flows.loader import parse_flow
from engine.flows.runtime import Runtime, Trigger
from engine.flows.session import SessionStatus
from engine.models.contact import Contact
from engine.models.customer_input import CustomerInput, InputKind

STEPS_PER_INPUT = 8
TEXT = "Thanks {{ contact.name }}, that is answer {{ vars.count }}: {{ reply.text }}"
FLOW = f"""
id: bench
name: Bench
steps:
  question:
    kind: ask
    text: "Say something, {{{{ contact.name }}}}"
    save_as: answer
  count:
    kind: set
    vars: {{count: "{{{{ vars.count | default(0) + 1 }}}}"}}
  parity:
    kind: branch
    cases: [{{expression: "vars.count % 2 == 0", next: even}}]
    else: odd
  even:
    kind: send
    text: "{TEXT}"
    next: tag
  odd:
    kind: send
    text: "{TEXT}"
  tag:
    kind: set
    vars: {{last: "{{{{ reply.text }}}}"}}
  reply_kind:
    kind: branch
    cases: [{{equals: stop, next: done}}]
    else: again
  again:
    kind: goto
    to: question
  done:
    kind: end
"""


def runtime_run(inputs: int) -> tuple[float, int]:
    flow, problems = parse_flow(textwrap.dedent(FLOW), "bench.yaml")
    assert flow is not None, problems
    assert not problems, problems
    runtime = Runtime(FlowSet.of([flow]))
    now = datetime.now(UTC)
    contact = Contact(
        id=1, wa_id="16505551234", name="Ann", marketing_opt_in=True, created_at=now, updated_at=now
    )
    replies = [CustomerInput(kind=InputKind.TEXT, text=f"message {n}") for n in range(64)]
    session, _ = runtime.start(flow, contact, Trigger.manual())
    started = time.perf_counter()
    for n in range(inputs):
        session, _ = runtime.resume(session, replies[n % 64])
    elapsed = time.perf_counter() - started
    assert session.status is SessionStatus.WAITING
    assert session.vars["count"] == inputs
    return elapsed, inputs * STEPS_PER_INPUT


def baseline_run(renders: int) -> float:
    template = SandboxedEnvironment(undefined=StrictUndefined).from_string(TEXT)
    context = {"contact": {"name": "Ann"}, "vars": {"count": 1}, "reply": {"text": "message"}}
    started = time.perf_counter()
    for _ in range(renders):
        template.render(context)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=20_000)
    args = parser.parse_args()
    runtime_run(200)  # warm the caches
    baseline_run(200)
    elapsed, steps = runtime_run(args.inputs)
    base = baseline_run(steps)
    print(f"customer inputs             {args.inputs}")
    print(f"steps run                   {steps} ({STEPS_PER_INPUT} per input)")
    print(f"runtime                     {elapsed:6.2f} s  {steps / elapsed:9.0f} steps/s")
    print(f"baseline (bare jinja2)      {base:6.2f} s  {steps / base:9.0f} renders/s")
    print(f"ratio runtime / baseline    {elapsed / base:6.2f}x the time")
    print(f"target 20000 steps/s        {'met' if steps / elapsed >= 20_000 else 'NOT MET'}")


if __name__ == "__main__":
    main()

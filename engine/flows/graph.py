"""A Mermaid diagram of a flow's steps (``python -m engine flows graph FLOW``).

Paste the output into any Mermaid viewer (GitHub renders ```mermaid blocks).
Asks, which wait for the customer, are rounded; branches are diamonds; ``start``
steps lead to the flow they start.
"""

from __future__ import annotations

from engine.flows.model import Flow, Step

_SHAPES = {
    "ask": ("([", "])"),
    "branch": ("{", "}"),
    "start": ("[[", "]]"),
    "http": ("[(", ")]"),
    "handoff": ("[/", "/]"),
    "end": ("((", "))"),
}
_SUMMARY_LENGTH = 40


def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", " ") + '"'


def _summary(step: Step) -> str:
    for field in ("text", "to", "flow", "url", "queue"):
        value = getattr(step, field, None)
        if isinstance(value, str):
            return value if len(value) <= _SUMMARY_LENGTH else value[: _SUMMARY_LENGTH - 1] + "…"
    template = getattr(step, "template", None)
    if template is not None:
        return f"template {template.name}"
    return ""


def mermaid(flow: Flow) -> str:
    ids = {name: f"s{index}" for index, name in enumerate(flow.order)}
    out = ["flowchart TD", f"  start(({_quote(flow.id)})) --> {ids[flow.order[0]]}"]
    ends = False
    flows: dict[str, str] = {}
    for name in flow.order:
        step = flow.steps.get(name)
        kind = step.kind if step is not None else "broken"
        left, right = _SHAPES.get(kind, ("[", "]"))
        summary = "" if step is None else _summary(step)
        label = f"{name} · {kind}" + (f"<br/>{summary}" if summary else "")
        out.append(f"  {ids[name]}{left}{_quote(label)}{right}")
    for name in flow.order:
        step = flow.steps.get(name)
        if step is None:
            continue
        for exit in step.exits():
            label = "" if exit.label in ("next", "goto") else f"|{_quote(exit.label)}|"
            if exit.flow is not None:
                node = flows.setdefault(exit.flow, f"f{len(flows)}")
                out.append(f"  {ids[name]} -.->{label} {node}")
                continue
            if exit.ends:
                continue
            target = flow.target(name, exit)
            if target is None:
                ends = True
                out.append(f"  {ids[name]} -->{label} finish")
            elif target in ids:
                out.append(f"  {ids[name]} -->{label} {ids[target]}")
    for other, node in flows.items():
        out.append(f"  {node}[[{_quote('flow ' + other)}]]")
    if ends:
        out.append('  finish(("end"))')
    return "\n".join(out) + "\n"

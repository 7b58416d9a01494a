"""Checks over loaded flows. Each check reports every problem it finds; nothing stops
at the first. Add a check by writing a function and decorating it with
:func:`flow_check` (one flow at a time) or :func:`set_check` (the whole set).

:func:`warnings` lists what may go wrong at run time without being wrong (it does not
fail validation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from jinja2 import TemplateError, nodes

from engine.flows.loader import Problem, dotted
from engine.flows.model import Flow
from engine.flows.render import ENVIRONMENT, syntax_error
from engine.flows.steps.ask import AskStep, Validation
from engine.flows.steps.branch import BranchStep
from engine.flows.steps.message import MessageFields
from engine.keywords import first_word, normalise
from engine.models.template import Template


@dataclass(frozen=True, slots=True)
class Context:
    flows: Mapping[str, Flow]
    catalogue: Mapping[tuple[str, str], Template]


FlowCheck = Callable[[Flow, Context], Iterable[Problem]]
SetCheck = Callable[[Sequence[Flow], Context], Iterable[Problem]]
FLOW_CHECKS: list[FlowCheck] = []
SET_CHECKS: list[SetCheck] = []


def flow_check(check: FlowCheck) -> FlowCheck:
    FLOW_CHECKS.append(check)
    return check


def set_check(check: SetCheck) -> SetCheck:
    SET_CHECKS.append(check)
    return check


def validate(flows: Sequence[Flow], catalogue: Iterable[Template]) -> list[Problem]:
    """Every problem of ``flows`` as one set, given the template ``catalogue``."""
    by_id: dict[str, Flow] = {}
    for flow in flows:
        by_id.setdefault(flow.id, flow)
    context = Context(by_id, {(t.name, t.language): t for t in catalogue})
    problems: set[Problem] = set()
    for flow in flows:
        for check in FLOW_CHECKS:
            problems.update(check(flow, context))
    for set_rule in SET_CHECKS:
        problems.update(set_rule(flows, context))
    return sorted(problems)


def warnings(flows: Sequence[Flow]) -> list[Problem]:
    """Templates that may make huge values: ``**``, and a text literal multiplied. The
    sandbox refuses a result over its limits when the flow runs, so the flow takes its
    error path; the author had better know before."""
    found: set[Problem] = set()
    for flow in flows:
        for name, step in flow.steps.items():
            for source in step.sources():
                for risk in _size_risks(source.text, expression=source.expression):
                    found.add(
                        _at(
                            flow,
                            f"warning: step '{name}', `{dotted(source.field)}`: {risk}; "
                            "a result too big stops the flow with an error when it runs",
                            "steps",
                            name,
                            *source.field,
                        )
                    )
    return sorted(found)


def _size_risks(source: str, *, expression: bool) -> list[str]:
    try:
        tree = ENVIRONMENT.parse("{{ " + source + " }}" if expression else source)
    except TemplateError:
        return []  # jinja_syntax reports it
    risks: list[str] = []
    if any(True for _ in tree.find_all(nodes.Pow)):
        risks.append("the template raises to a power (`**`)")
    for product in tree.find_all(nodes.Mul):
        if any(
            isinstance(side, nodes.Const) and isinstance(side.value, str)
            for side in (product.left, product.right)
        ):
            risks.append("the template multiplies a text literal (`'...' * n`)")
            break
    return risks


def _at(flow: Flow, message: str, *path: str | int) -> Problem:
    return Problem(flow.file, flow.line(path), message)


@flow_check
def missing_targets(flow: Flow, context: Context) -> Iterator[Problem]:
    for name, step in flow.steps.items():
        for exit in step.exits():
            if exit.flow is not None:
                if exit.flow not in context.flows:
                    yield _at(
                        flow,
                        f"step '{name}' starts flow '{exit.flow}', which does not exist",
                        "steps",
                        name,
                        *exit.field,
                    )
            elif exit.step is not None and exit.step not in flow.order:
                yield _at(
                    flow,
                    f"step '{name}' goes to '{exit.step}', which is not a step of this flow",
                    "steps",
                    name,
                    *exit.field,
                )


@flow_check
def unreachable_steps(flow: Flow, context: Context) -> Iterator[Problem]:
    if flow.broken or flow.first is None:
        return  # a broken step's exits are unknown: unreachable would be a guess
    reached = {flow.first}
    todo = [flow.first]
    while todo:
        name = todo.pop()
        for exit in flow.steps[name].exits():
            target = flow.target(name, exit)
            if target is not None and target in flow.steps and target not in reached:
                reached.add(target)
                todo.append(target)
    for name in flow.order:
        if name not in reached:
            yield _at(
                flow,
                f"step '{name}' is never reached: no step goes to it "
                f"(the flow starts at '{flow.first}')",
                "steps",
                name,
            )


@flow_check
def branch_without_else(flow: Flow, context: Context) -> Iterator[Problem]:
    for name, step in flow.steps.items():
        if isinstance(step, BranchStep) and step.otherwise is None:
            yield _at(
                flow,
                f"branch step '{name}' has no `else`: add `else: <step>` for what no case takes",
                "steps",
                name,
            )


@flow_check
def ask_checks(flow: Flow, context: Context) -> Iterator[Problem]:
    for name, step in flow.steps.items():
        if not isinstance(step, AskStep):
            continue
        if step.save_as is None:
            yield _at(
                flow,
                f"ask step '{name}' has no `save_as`: name the variable that gets the answer",
                "steps",
                name,
            )
        if step.check is Validation.CHOICE and not step.choices():
            yield _at(
                flow,
                f"ask step '{name}' validates a choice but has no buttons or list",
                "steps",
                name,
                "validate",
            )
        if step.check is Validation.REGEX and step.pattern is None:
            yield _at(
                flow,
                f"ask step '{name}' validates with a regex but has no `pattern`",
                "steps",
                name,
                "validate",
            )
        if step.pattern is not None:
            if step.check is not Validation.REGEX:
                yield _at(
                    flow,
                    f"ask step '{name}' has a `pattern` but does not `validate: regex`",
                    "steps",
                    name,
                    "pattern",
                )
            try:
                re.compile(step.pattern)
            except re.error as error:
                yield _at(
                    flow,
                    f"ask step '{name}', `pattern`: not a valid regular expression: {error}",
                    "steps",
                    name,
                    "pattern",
                )


@flow_check
def templates_in_catalogue(flow: Flow, context: Context) -> Iterator[Problem]:
    for name, step in flow.steps.items():
        if not isinstance(step, MessageFields) or step.template is None:
            continue
        spec = step.template
        template = context.catalogue.get((spec.name, spec.language))
        if template is None:
            yield _at(
                flow,
                f"step '{name}' sends template '{spec.name}' ({spec.language}), "
                "which is not in the catalogue",
                "steps",
                name,
                "template",
                "name",
            )
        elif len(spec.params) != template.param_count:
            yield _at(
                flow,
                f"step '{name}': template '{spec.name}' takes {template.param_count} "
                f"parameter(s), {len(spec.params)} given",
                "steps",
                name,
                "template",
                "params",
            )


@flow_check
def jinja_syntax(flow: Flow, context: Context) -> Iterator[Problem]:
    for name, step in flow.steps.items():
        for source in step.sources():
            complaint = syntax_error(source.text, expression=source.expression)
            if complaint is not None:
                field = dotted(source.field)
                yield _at(
                    flow,
                    f"step '{name}', `{field}`: jinja2 syntax error: {complaint}",
                    "steps",
                    name,
                    *source.field,
                )


Node = tuple[str, str]  # (flow id, step name)


@set_check
def loops_without_wait(flows: Sequence[Flow], context: Context) -> Iterator[Problem]:
    """A cycle of steps, possibly across flows, in which no step waits for the customer."""
    edges: dict[Node, list[Node]] = {}
    for flow in context.flows.values():
        for name, step in flow.steps.items():
            if step.waits_for_customer:
                continue  # the flow stops here: a loop through it is a conversation
            targets: list[Node] = []
            for exit in step.exits():
                if exit.flow is not None:
                    other = context.flows.get(exit.flow)
                    if other is not None and other.first is not None:
                        targets.append((other.id, other.first))
                    continue
                target = flow.target(name, exit)
                if target is not None and target in flow.steps:
                    targets.append((flow.id, target))
            edges[(flow.id, name)] = targets
    for component in _strongly_connected(edges):
        node = component[0]
        if len(component) == 1 and node not in edges.get(node, []):
            continue
        flow = context.flows[node[0]]
        names = [f"'{s}'" if f == flow.id else f"'{f}/{s}'" for f, s in component]
        yield _at(
            flow,
            f"steps {', '.join(names)} loop without waiting for the customer: "
            "put an ask step in the loop or leave it",
            "steps",
            node[1],
        )


def _strongly_connected(edges: Mapping[Node, list[Node]]) -> list[list[Node]]:
    """Tarjan's components, each listed in the order its nodes were written."""
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    stack: list[Node] = []
    on_stack: set[Node] = set()
    found: list[list[Node]] = []
    order = {node: position for position, node in enumerate(edges)}

    def visit(root: Node) -> None:
        work = [(root, iter(edges.get(root, [])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[Node] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(sorted(component, key=order.__getitem__))

    for node in edges:
        if node not in index:
            visit(node)
    return found


@set_check
def unique_ids_and_triggers(flows: Sequence[Flow], context: Context) -> Iterator[Problem]:
    ids: dict[str, Flow] = {}
    keywords: dict[str, Flow] = {}
    first_words: dict[str, Flow] = {}
    default: Flow | None = None
    new_contact: Flow | None = None
    for flow in flows:
        if flow.id in ids:
            yield _at(flow, f"flow id '{flow.id}' is also the id of {ids[flow.id].file}", "id")
            continue
        ids[flow.id] = flow
        for field, taken, words in (
            ("keywords", keywords, flow.triggers.keywords),
            ("first_word", first_words, flow.triggers.first_word),
        ):
            for index, word in enumerate(words):
                key = normalise(word) if field == "keywords" else first_word(word)
                if not key or (field == "first_word" and key != normalise(word)):
                    yield _at(
                        flow,
                        f"trigger {field} {word!r} is not "
                        + ("a keyword" if field == "keywords" else "one word"),
                        "triggers",
                        field,
                        index,
                    )
                elif key in taken and taken[key] is not flow:
                    yield _at(
                        flow,
                        f"trigger {field} '{word}' also starts flow '{taken[key].id}' "
                        f"({taken[key].file}): a message can start one flow only",
                        "triggers",
                        field,
                        index,
                    )
                else:
                    taken[key] = flow
        if flow.triggers.default:
            if default is not None:
                yield _at(
                    flow,
                    f"flow '{flow.id}' is a default flow, and so is '{default.id}' "
                    f"({default.file}): only one flow may be",
                    "triggers",
                    "default",
                )
            else:
                default = flow
        if flow.triggers.new_contact:
            if new_contact is not None:
                yield _at(
                    flow,
                    f"flow '{flow.id}' starts for new contacts, and so does "
                    f"'{new_contact.id}' ({new_contact.file}): only one flow may",
                    "triggers",
                    "new_contact",
                )
            else:
                new_contact = flow

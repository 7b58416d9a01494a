"""``python -m engine flows ...``: tools for flow authors (validate, schema, graph, chat)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.catalogue import CatalogueError, load_templates
from engine.config import load_settings
from engine.flows.chat import Chat, chat_contact
from engine.flows.flowset import FlowSet, FlowsInvalid, check_flows, flow_env, load_flow_set
from engine.flows.graph import mermaid
from engine.flows.loader import load_flows
from engine.flows.schema import flow_schema
from engine.flows.validate import warnings
from engine.models.template import Template


def _catalogue(args: argparse.Namespace) -> list[Template]:
    path: Path | None = args.templates or load_settings().templates_file
    if path is None or not path.exists():
        return []
    try:
        return load_templates(path)
    except CatalogueError as error:
        print(f"the template catalogue does not load:\n{error}", file=sys.stderr)
        raise SystemExit(2) from None


def _flows_dir(args: argparse.Namespace) -> Path:
    return Path(args.flows) if args.flows else load_settings().flows_dir


def validate(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or [_flows_dir(args)]
    flows, problems = check_flows(paths, _catalogue(args))
    for problem in problems:
        print(problem)
    for warning in warnings(flows):
        print(warning)
    if problems:
        files = len({problem.file for problem in problems})
        print(f"{len(problems)} problem(s) in {files} file(s)", file=sys.stderr)
        return 1
    print(f"{len(flows)} flow(s) OK: {', '.join(sorted(flow.id for flow in flows))}")
    return 0


def schema(args: argparse.Namespace) -> int:
    print(json.dumps(flow_schema(), indent=2))
    return 0


def _load(args: argparse.Namespace) -> tuple[FlowSet, str]:
    """The flow set around FLOW (an id in the flows folder, or a file) and FLOW's id."""
    given = Path(args.flow)
    if given.suffix in (".yaml", ".yml") and given.is_file():
        folder = given.parent
        flows, _ = load_flows([given])
        flow_id = flows[0].id if flows else args.flow
    else:
        folder, flow_id = _flows_dir(args), args.flow
    flow_set = load_flow_set([folder], _catalogue(args), env=flow_env())
    return flow_set, flow_id


def graph(args: argparse.Namespace) -> int:
    try:
        flow_set, flow_id = _load(args)
    except FlowsInvalid as invalid:
        print(invalid, file=sys.stderr)
        return 1
    flow = flow_set.get(flow_id)
    if flow is None:
        print(f"no flow {flow_id!r}; the flows are {', '.join(sorted(flow_set.flows))}")
        return 1
    print(mermaid(flow), end="")
    return 0


def chat(args: argparse.Namespace) -> int:
    try:
        flow_set, flow_id = _load(args)
    except FlowsInvalid as invalid:
        print(invalid, file=sys.stderr)
        return 1
    contact = chat_contact(args.name, opted_in=not args.opted_out)
    return Chat(flow_set, contact).run(flow_id)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    flows = commands.add_parser("flows", help="check, draw and try bot flows")
    tools = flows.add_subparsers(dest="flows_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--templates", type=Path, help="template catalogue (default: TEMPLATES_FILE)"
        )
        parser.add_argument("--flows", help="the flows folder (default: FLOWS_DIR)")

    check = tools.add_parser("validate", help="list every problem of the flows; exit 1 if any")
    check.add_argument("paths", nargs="*", help="flow files or folders (default: FLOWS_DIR)")
    common(check)
    check.set_defaults(run=validate)

    tools.add_parser("schema", help="print the JSON Schema of flow files").set_defaults(run=schema)

    draw = tools.add_parser("graph", help="print a Mermaid diagram of a flow's steps")
    draw.add_argument("flow", help="a flow id, or a flow file")
    common(draw)
    draw.set_defaults(run=graph)

    talk = tools.add_parser("chat", help="talk to a flow in the terminal (no server)")
    talk.add_argument("flow", help="a flow id, or a flow file")
    talk.add_argument("--name", help="the contact's name")
    talk.add_argument("--opted-out", action="store_true", help="the contact opted out")
    common(talk)
    talk.set_defaults(run=chat)

"""The parts of ``engine`` import one way: wire format → inbound → engine parts →
outbound → wire format, with the store below and the web above (docs/architecture.md).

Each first-level part (a package or module directly under ``engine``) has a layer; a
part may import parts of lower layers only. A new part must be given its layer here."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"

LAYERS: dict[str, int] = {
    # foundations: no I/O of their own
    "clock": 0,
    "ids": 0,
    "phone": 0,
    "identity": 0,  # how Meta names a customer: phone number or user id
    "models": 0,
    "metrics": 0,
    "keywords": 0,
    "catalogue": 1,
    "config": 1,
    "send_rules": 1,
    "background": 1,  # the loops of the background parts, and their health
    # the store, below everything that keeps state
    "store": 2,
    # the wire format, spoken by inbound and outbound alike
    "whatsapp": 3,
    "media": 3,  # media on the Graph API and its disk cache
    "outbound": 4,
    "inbound": 5,
    # the engine parts
    "contacts": 6,  # below campaigns, which enrol contacts from CSV as contacts imports them
    "agents": 7,
    "campaigns": 7,
    "flows": 8,
    # developer tools, the composition root, and what runs it
    "devtools": 9,
    "composition": 10,
    "web": 11,
    "worker": 11,
    "cli": 12,
    "__main__": 13,
    "__init__": 0,
}


def _part(path: Path) -> str:
    relative = path.relative_to(ENGINE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> set[str]:
    """The first-level parts of ``engine`` that ``path`` imports (at any depth of code)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "engine":
                names = [f"engine.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "engine" and len(parts) > 1:
                found.add(parts[1])
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """part → imported part → the files that import it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(ENGINE.rglob("*.py")):
        source = _part(path)
        for target in _imports(path) - {source}:
            graph[source][target].append(str(path.relative_to(ENGINE.parent)))
    return graph


def test_every_part_has_a_layer() -> None:
    parts = {_part(path) for path in ENGINE.rglob("*.py")}
    assert parts - LAYERS.keys() == set(), "give each new part of engine its layer"


def test_parts_import_only_lower_layers() -> None:
    wrong = [
        f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]}) "
        f"in {', '.join(files)}"
        for source, targets in import_graph().items()
        for target, files in targets.items()
        if LAYERS[target] >= LAYERS[source]
    ]
    assert wrong == []


def test_there_is_no_import_cycle_between_parts() -> None:
    graph = {source: set(targets) for source, targets in import_graph().items()}
    done: set[str] = set()

    def visit(part: str, path: list[str]) -> None:
        if part in path:
            pytest.fail("import cycle: " + " → ".join([*path[path.index(part) :], part]))
        if part in done:
            return
        for target in sorted(graph.get(part, ())):
            visit(target, [*path, part])
        done.add(part)

    for part in sorted(graph):
        visit(part, [])


def test_the_check_sees_a_cycle(tmp_path: Path) -> None:
    """The import reader finds what a cycle would be made of."""
    module = tmp_path / "m.py"
    module.write_text("from engine.outbound.sender import Sender\nimport engine.inbound.x\n")
    assert _imports(module) == {"outbound", "inbound"}


def _route_modules() -> set[str]:
    """The REST route modules: those of ``engine.web`` that declare routes."""
    return {
        f"engine.web.{path.stem}"
        for path in (ENGINE / "web").glob("*.py")
        if "web.RouteTableDef()" in path.read_text("utf-8")
    }


def test_the_console_imports_no_rest_route_module() -> None:
    """The console and the REST API call the same use cases of the engine parts; neither
    reaches into the other's routes."""
    routes = _route_modules()
    assert "engine.web.contacts" in routes
    wrong = []
    for path in (ENGINE / "web" / "console").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in routes:
                wrong.append(f"{path.name} imports {node.module}")
            if isinstance(node, ast.Import):
                wrong += [f"{path.name} imports {a.name}" for a in node.names if a.name in routes]
    assert wrong == []

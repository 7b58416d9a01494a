"""Reading flow files: YAML with the line of every value, into step models.

Every problem is collected, with its file and line, rather than stopping at the
first. YAML booleans are YAML 1.2's (only ``true`` and ``false``), so a button id
or a reply written ``yes`` or ``no`` stays text, and dates stay text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

import yaml
from pydantic import Field, ValidationError

import engine.flows.steps  # noqa: F401  (registers the step kinds)
from engine.flows.model import STEP_KINDS, Flow, FlowModel, Path, Step, Triggers


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with a flow: where, and a sentence saying what."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no implicit dates."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class FlowHeader(FlowModel):
    """The top of a flow file."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$", description="unique among flows")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    triggers: Triggers = Triggers()
    interruptible: bool = Field(
        default=False,
        description="whether another flow's keyword may interrupt this flow while it waits",
    )
    steps: dict[str, dict[str, Any]] = Field(
        min_length=1, description="named steps; the first one written starts the flow"
    )


_STEP_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_TYPE_TAGS = {"str", "int", "float", "bool", "none", "dict", "list", "tuple"}


def _constructed_lines(
    node: yaml.Node, path: Path, lines: dict[Path, int], file: str, problems: list[Problem]
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(file, line, f"`{key}` is written twice (first on line {seen[key]})")
                )
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _constructed_lines(value_node, (*path, key), lines, file, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _constructed_lines(item, (*path, index), lines, file, problems)


def read_yaml(text: str, file: str) -> tuple[Any, dict[Path, int], list[Problem]]:
    """The document, the line of every key and item, and syntax problems."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, [Problem(file, 1, "the file is empty: a flow needs id, name, steps")]
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" ({error.context})" if error.context else ""
        line = mark.line + 1 if mark else 1
        return None, {}, [Problem(file, line, f"YAML syntax error: {error.problem}{where}")]
    except yaml.YAMLError as error:
        return None, {}, [Problem(file, 1, f"YAML error: {error}")]
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    _constructed_lines(node, (), lines, file, problems)
    return data, lines, problems


def _clean(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    # pydantic names union members in locations ("str", "function-after[...]"): drop them.
    return tuple(
        part
        for part in loc
        if not (
            isinstance(part, str)
            and (
                part in _TYPE_TAGS
                or "[" in part
                or ("-" in part and part.startswith(("function", "constrained")))
            )
        )
    )


def dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_names(model: type[FlowModel]) -> str:
    return ", ".join(info.alias or name for name, info in model.model_fields.items())


def _problems_of(
    error: ValidationError,
    *,
    file: str,
    lines: dict[Path, int],
    base: Path,
    where: str,
    model: type[FlowModel],
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str | int, ...]] = set()
    for issue in error.errors(include_url=False):
        loc = _clean(issue["loc"])
        if loc in seen:
            continue
        seen.add(loc)
        full = tuple(str(p) if not isinstance(p, int) else p for p in (*base, *loc))
        line = next(
            (lines[full[:end]] for end in range(len(full), -1, -1) if full[:end] in lines), 1
        )
        field = dotted(loc)
        message = str(issue["msg"]).removeprefix("Value error, ")
        kind = issue["type"]
        if kind == "extra_forbidden":
            text = f"{where} has an unknown field `{field}`"
            if len(loc) == 1:
                text += f"; it takes {_field_names(model)}"
        elif kind == "missing":
            text = f"{where} needs `{field}`"
        elif field:
            text = f"{where}, `{field}`: {message}"
        else:
            text = f"{where}: {message}"
        problems.append(Problem(file, line, text))
    return problems


def parse_flow(text: str, file: str) -> tuple[Flow | None, list[Problem]]:
    """A flow from YAML text, and every problem found while reading it.

    A flow comes back even when some steps are broken (they are listed in
    ``Flow.broken``), so the validator can still check the rest.
    """
    data, lines, problems = read_yaml(text, file)
    if data is None:
        return None, problems
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, "a flow file is a mapping with id, name and steps"))
        return None, problems
    try:
        header = FlowHeader.model_validate(data)
    except ValidationError as error:
        problems += _problems_of(
            error, file=file, lines=lines, base=(), where="the flow", model=FlowHeader
        )
        return None, problems

    steps: dict[str, Step] = {}
    broken: set[str] = set()
    for name, body in header.steps.items():
        line = lines.get(("steps", name), 1)
        where = f"step '{name}'"
        if not _STEP_NAME.match(name):
            problems.append(
                Problem(file, line, f"{where}: a step name uses only letters, digits, _ and -")
            )
        kind = body.get("kind")
        cls = STEP_KINDS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            broken.add(name)
            known = ", ".join(sorted(STEP_KINDS))
            if kind is None:
                problems.append(Problem(file, line, f"{where} has no `kind`: one of {known}"))
            else:
                close = difflib.get_close_matches(str(kind), list(STEP_KINDS), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(
                    Problem(
                        file,
                        lines.get(("steps", name, "kind"), line),
                        f"{where} has an unknown kind `{kind}`{hint}; the kinds are {known}",
                    )
                )
            continue
        try:
            steps[name] = cls.model_validate(body)
        except ValidationError as error:
            broken.add(name)
            problems += _problems_of(
                error,
                file=file,
                lines=lines,
                base=("steps", name),
                where=f"{kind} step '{name}'",
                model=cls,
            )
    names = list(header.steps)
    flow = Flow(
        id=header.id,
        name=header.name,
        description=header.description,
        triggers=header.triggers,
        interruptible=header.interruptible,
        steps=steps,
        file=file,
        lines=lines,
        following={
            name: (names[i + 1] if i + 1 < len(names) else None) for i, name in enumerate(names)
        },
        order=tuple(names),
        broken=frozenset(broken),
    )
    return flow, problems


def flow_files(paths: Iterable[FilePath]) -> tuple[list[FilePath], list[Problem]]:
    """The YAML files of ``paths`` (folders give their ``*.yaml`` and ``*.yml``)."""
    files: list[FilePath] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 0, "no such file or folder"))
    return files, problems


def load_flows(
    paths: Iterable[FilePath], *, relative_to: FilePath | None = None
) -> tuple[list[Flow], list[Problem]]:
    """Every flow in ``paths`` and every problem met reading them."""
    files, problems = flow_files(paths)
    flows: list[Flow] = []
    for path in files:
        name = str(path.relative_to(relative_to)) if relative_to else str(path)
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(name, 0, f"cannot be read: {error}"))
            continue
        flow, found = parse_flow(text, name)
        problems += found
        if flow is not None:
            flows.append(flow)
    return flows, problems

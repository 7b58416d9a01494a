"""A validated set of flows, indexed by id and by trigger: what the runtime runs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.flows.loader import Problem, load_flows
from engine.flows.model import Flow
from engine.flows.validate import validate
from engine.keywords import first_word, normalise
from engine.models.template import Template

ENV_PREFIX = "FLOW_"


class FlowsInvalid(ValueError):
    """The flows do not validate; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the flows:\n{lines}")


def flow_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables flows may read as ``env.NAME``: those named ``FLOW_*``."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if name.startswith(ENV_PREFIX)}


@dataclass(frozen=True)
class FlowSet:
    flows: Mapping[str, Flow]
    catalogue: Mapping[tuple[str, str], Template] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    keywords: Mapping[str, str] = field(default_factory=dict)
    first_words: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None
    new_contact: str | None = None

    @classmethod
    def of(
        cls,
        flows: Iterable[Flow],
        catalogue: Iterable[Template] = (),
        env: Mapping[str, str] | None = None,
    ) -> FlowSet:
        """Index ``flows``, which must already validate."""
        by_id = {flow.id: flow for flow in flows}
        keywords: dict[str, str] = {}
        first_words: dict[str, str] = {}
        default = new_contact = None
        for flow in by_id.values():
            for word in flow.triggers.keywords:
                keywords[normalise(word)] = flow.id
            for word in flow.triggers.first_word:
                first_words[first_word(word)] = flow.id
            if flow.triggers.default:
                default = flow.id
            if flow.triggers.new_contact:
                new_contact = flow.id
        return cls(
            flows=by_id,
            catalogue={(t.name, t.language): t for t in catalogue},
            env=dict(env or {}),
            keywords=keywords,
            first_words=first_words,
            default=default,
            new_contact=new_contact,
        )

    def get(self, flow_id: str) -> Flow | None:
        return self.flows.get(flow_id)

    def by_keyword(self, text: str | None) -> Flow | None:
        """The flow a message starts by keyword: the whole message, else its first word."""
        if not text:
            return None
        flow_id = self.keywords.get(normalise(text)) or self.first_words.get(first_word(text))
        return None if flow_id is None else self.flows[flow_id]

    def summary(self) -> list[dict[str, Any]]:
        """The flows and their triggers, as ``GET /api/v1/flows`` lists them."""
        return [
            {
                "id": flow.id,
                "name": flow.name,
                "description": flow.description,
                "file": flow.file,
                "steps": len(flow.steps),
                "interruptible": flow.interruptible,
                "triggers": flow.triggers.model_dump(mode="json"),
            }
            for flow in sorted(self.flows.values(), key=lambda f: f.id)
        ]


def check_flows(
    paths: Iterable[Path], catalogue: Iterable[Template], *, relative_to: Path | None = None
) -> tuple[list[Flow], list[Problem]]:
    """Load and validate: the flows, and every problem (sorted by file and line)."""
    templates = list(catalogue)
    flows, problems = load_flows(paths, relative_to=relative_to)
    return flows, sorted(set(problems) | set(validate(flows, templates)))


def load_flow_set(
    paths: Iterable[Path],
    catalogue: Iterable[Template],
    *,
    env: Mapping[str, str] | None = None,
    relative_to: Path | None = None,
) -> FlowSet:
    """The flows of ``paths``, or :class:`FlowsInvalid` listing every problem."""
    templates = list(catalogue)
    flows, problems = check_flows(paths, templates, relative_to=relative_to)
    if problems:
        raise FlowsInvalid(problems)
    return FlowSet.of(flows, templates, flow_env() if env is None else env)

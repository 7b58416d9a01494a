"""Loading the template catalogue from a YAML file (``fixtures/templates.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from engine.models.template import Template


class CatalogueError(ValueError):
    pass


def load_templates(path: Path) -> list[Template]:
    """Every template in the file, or a CatalogueError naming each bad entry and its line."""
    text = path.read_text("utf-8")
    try:
        document = yaml.compose(text)
    except yaml.YAMLError as error:
        raise CatalogueError(f"{path}: {error}") from None
    if document is None:
        return []
    entries = document.value if isinstance(document, yaml.SequenceNode) else None
    if entries is None:
        raise CatalogueError(f"{path}:1: expected a list of templates")
    templates: list[Template] = []
    problems: list[str] = []
    for node in entries:
        line = node.start_mark.line + 1
        try:
            templates.append(Template.model_validate(yaml.safe_load(yaml.serialize(node))))
        except ValidationError as error:
            for issue in error.errors(include_url=False):
                field = ".".join(str(part) for part in issue["loc"]) or "template"
                problems.append(f"{path}:{line}: {field}: {issue['msg']}")
    if problems:
        raise CatalogueError("\n".join(problems))
    return templates

"""The JSON Schema of flow files, generated from the step models (``python -m engine
flows schema``), so editors can check and complete flows as they are written.

With the YAML extension of VS Code, for example, put this first in a flow file::

    # yaml-language-server: $schema=../flow.schema.json
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, create_model

from engine.flows.loader import FlowHeader
from engine.flows.model import STEP_KINDS, StepName

SCHEMA_ID = "https://optinflow.local/schemas/flow.json"


def flow_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of one flow file, with every registered step kind."""
    kinds = tuple(STEP_KINDS[name] for name in sorted(STEP_KINDS))
    step = Annotated[Union[kinds], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
    document = create_model(
        "Flow",
        __base__=FlowHeader,
        steps=(
            dict[StepName, step],
            Field(min_length=1, description="named steps; the first one written starts the flow"),
        ),
    )
    schema = TypeAdapter(document).json_schema(mode="validation")
    for name, definition in schema.get("$defs", {}).items():
        if name in {kind.__name__ for kind in kinds}:
            required = definition.setdefault("required", [])
            if "kind" not in required:
                required.insert(0, "kind")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "optinflow bot flow",
    }

"""jinja2 for flows: sandboxed, strict, and compiled once per text.

A flow cannot reach Python internals, change what it reads, make huge values or take
long (``engine.flows.sandbox``), and a missing variable is an error, not a blank
(``StrictUndefined``).

>>> render("Hi {{ contact.name }}!", {"contact": {"name": "Ann"}})
'Hi Ann!'
>>> value("{{ vars.count + 1 }}", {"vars": {"count": 2}})
3
>>> render("{{ vars.missing }}", {"vars": {}})
Traceback (most recent call last):
...
engine.flows.render.RenderError: 'dict object' has no attribute 'missing'
>>> render("{{ contact.attributes.update(tier='gold') }}", {"contact": {"attributes": {}}})
Traceback (most recent call last):
...
engine.flows.render.RenderError: access to attribute 'update' of 'dict' object is unsafe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined

from engine.flows.sandbox import BoundedEnvironment, Deadline

ENVIRONMENT = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
_SINGLE = re.compile(r"^\s*\{\{(?P<expression>.*)\}\}\s*$", re.DOTALL)
_CACHE_SIZE = 8192


class RenderError(ValueError):
    """A text or expression could not be rendered (missing variable, sandbox refusal...)."""


@lru_cache(maxsize=_CACHE_SIZE)
def _template(source: str) -> Callable[..., str]:
    return ENVIRONMENT.from_string(source).render


@lru_cache(maxsize=_CACHE_SIZE)
def _expression(source: str) -> Callable[..., Any]:
    return ENVIRONMENT.compile_expression(source, undefined_to_none=False)


def _is_template(text: str) -> bool:
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


def render(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with its jinja2 placeholders filled."""
    if not _is_template(text):
        return text
    try:
        with Deadline():
            return _template(text)(context)
    except TemplateError as error:
        raise RenderError(str(error)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as error:
        raise RenderError(f"{type(error).__name__}: {error}") from None


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of a bare jinja2 expression, e.g. ``contact.attributes.tier == 'gold'``."""
    try:
        with Deadline():
            result = _expression(expression)(context)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result
    except TemplateError as error:
        raise RenderError(str(error)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as error:
        raise RenderError(f"{type(error).__name__}: {error}") from None


def single_expression(text: str) -> str | None:
    """The expression when ``text`` is exactly one ``{{ ... }}``, else None."""
    match = _SINGLE.match(text)
    if match is None:
        return None
    inner = match["expression"]
    return None if "{{" in inner or "}}" in inner else inner


def value(raw: Any, context: Mapping[str, Any]) -> Any:
    """A value written in a flow: a text that is one ``{{ expression }}`` keeps the
    expression's type (number, bool, dict...); other texts render to text; lists and
    mappings are rendered inside; other YAML values are taken as written."""
    if isinstance(raw, str):
        expression = single_expression(raw)
        return render(raw, context) if expression is None else evaluate(expression, context)
    if isinstance(raw, list):
        return [value(item, context) for item in raw]
    if isinstance(raw, dict):
        return {key: value(item, context) for key, item in raw.items()}
    return raw


def syntax_error(source: str, *, expression: bool = False) -> str | None:
    """jinja2's complaint about ``source``, or None when it compiles."""
    try:
        if expression:
            ENVIRONMENT.compile_expression(source)
        else:
            ENVIRONMENT.parse(source)
    except TemplateError as error:
        return str(error.message if hasattr(error, "message") else error)
    return None

"""Request JSON read strictly: what Python's json module accepts but the store or an
answer cannot hold (NaN and Infinity, numbers past 64 bits, nesting that would exhaust
the stack, lone surrogates) is refused before any route sees it, naming where.

JSON texts are bytes in, Python values out; refusals are :class:`ApiError` s.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine.web.error_answers import ApiError

MAX_DEPTH = 64
"""Arrays and objects nested deeper than this are refused (no request needs more)."""
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""Integers the stores keep: SQLite's and PostgreSQL's signed 64 bits."""
_INT_MAX_DIGITS = len(str(INT_MAX))


class _OutOfRange:
    """A number kept as its text until the walk finds where it stands in the document."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _NotJson(Exception):
    """A token Python's json module accepts though JSON has no such thing."""


def _int(text: str) -> int | _OutOfRange:
    # Decide by length first: int() of a long digit string is slow, and refused past
    # Python's 4,300-digit limit with a ValueError.
    if len(text.lstrip("-")) > _INT_MAX_DIGITS:
        return _OutOfRange(text)
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else _OutOfRange(text)


def _float(text: str) -> float | _OutOfRange:
    value = float(text)  # 1e999 is inf: a number JSON wrote but no store can keep
    return value if math.isfinite(value) else _OutOfRange(text)


def _constant(name: str) -> None:
    raise _NotJson(f"{name} is not a JSON value")


def malformed(reason: str) -> ApiError:
    return ApiError(400, "malformed_json", f"the body is not valid JSON: {reason}")


def out_of_range(field: str, text: str) -> ApiError:
    shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
    message = f"{shown} is out of range (integers from {INT_MIN} to {INT_MAX}, finite decimals)"
    return ApiError(
        422,
        "invalid_request",
        f"{field}: {message}",
        fields=[{"field": field, "message": message}],
    )


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path) or "body"


def _check(document: Any) -> None:
    """Walk the document without recursion: depth, numbers out of range, surrogates."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _OutOfRange):
            raise out_of_range(_where(path), value.text)
        if isinstance(value, str):
            if _has_surrogate(value):
                raise malformed(f"{_where(path)} holds a lone surrogate (\\ud800-\\udfff)")
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= MAX_DEPTH:
            raise malformed(f"{_where(path)} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
            continue
        for key, item in value.items():
            if _has_surrogate(key):
                raise malformed(f"a key of {_where(path)} holds a lone surrogate")
            stack.append((item, (*path, key)))


def parse_json(raw: bytes) -> Any:
    """The JSON document of ``raw``; 400 ``malformed_json`` when it is not one a request
    may carry, 422 naming the field whose number is out of range."""
    try:
        document = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise malformed(str(error)) from None
    except _NotJson as error:
        raise malformed(str(error)) from None
    except RecursionError:
        raise malformed(f"it is nested deeper than {MAX_DEPTH} levels") from None
    _check(document)
    return document

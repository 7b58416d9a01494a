"""The jinja2 environment flows render in: sandboxed, read-only, and bounded in size and time.

A flow is written by an author, not by us, and renders in the event loop, so a template
must not reach Python internals (jinja2's sandbox), change what it reads (the contact,
its attributes, the flow's variables: ``ImmutableSandboxedEnvironment`` refuses
``dict.update``, ``list.append`` and the like), make huge values, or take long.

Size: the operators that grow a value (``**``, ``*``, ``+``, ``%``, ``~``), ``range``,
the width-taking string methods and filters, and every piece of text the template
outputs are checked *before* anything big is allocated: no text or list longer than
:data:`MAX_LENGTH`, no integer larger than :data:`MAX_INTEGER`, no range longer than
:data:`MAX_RANGE`.

Time: a render cannot be cut from outside (it runs in the event loop's thread, and a
thread cannot be stopped), so it stops itself: the render sets a deadline
:data:`MAX_RENDER_SECONDS` ahead, and what can repeat work looks at the clock: each turn
of a ``for`` loop, each call (macros, recursion, methods) and each checked operator.
Between two looks a template does work in proportion to its own length over values
that are bounded, so a render overruns the deadline by little.

Refusals raise :class:`RenderLimit`, a jinja2 ``SecurityError``, which the flow runtime
treats like any other render error.

>>> environment = BoundedEnvironment()
>>> with Deadline():
...     environment.from_string("{{ 'ab' * 3 }}").render()
'ababab'
>>> with Deadline():
...     environment.from_string("{{ 9 ** (9 ** 8) }}").render()
Traceback (most recent call last):
...
engine.flows.sandbox.RenderLimit: the result would be an integer over 10**100 (MAX_INTEGER)
"""

from __future__ import annotations

import functools
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar, Token
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_format, do_indent, do_wordwrap
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_LENGTH = 10_000
"""The longest text or list a template may make (and the longest text it may output)."""
MAX_INTEGER = 10**100
"""The largest integer (in magnitude) a template may make."""
MAX_RANGE = 10_000
"""The longest ``range`` a template may make."""
MAX_RENDER_SECONDS = 0.1
"""The work (CPU time) one render may take before it is stopped."""

_MAX_INTEGER_BITS = MAX_INTEGER.bit_length()
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_ITERATION_GUARD = "__optinflow_bounded_iteration__"
_TEXT_GUARD = "__optinflow_bounded_text__"

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("render_deadline", default=None)
"""When the render in progress is due: by the clock, and by this thread's CPU time."""


class RenderLimit(SecurityError):
    """A template went over one of the limits of this module."""


class Deadline:
    """Renders inside stop once ``seconds`` of work have passed. (A class, not a
    generator: it wraps every render, and this is cheaper.)"""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float = MAX_RENDER_SECONDS) -> None:
        self._seconds = seconds
        self._token: Token[tuple[float, float] | None] | None = None

    def __enter__(self) -> None:
        due = (time.monotonic() + self._seconds, time.thread_time() + self._seconds)
        self._token = _deadline.set(due)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _deadline.reset(self._token)


def _on_time() -> None:
    due = _deadline.get()
    # The clock is cheap to read; CPU time is what counts (a process made to wait by a
    # busy machine has done no work), so it is read only once the clock says late.
    if due is not None and time.monotonic() > due[0] and time.thread_time() > due[1]:
        raise RenderLimit(
            f"the template took more than {MAX_RENDER_SECONDS * 1000:.0f} ms "
            "(MAX_RENDER_SECONDS); it does too much work"
        )


def _too_long(what: str) -> RenderLimit:
    return RenderLimit(f"the result would be {what} over {MAX_LENGTH:,} long (MAX_LENGTH)")


def _too_big() -> RenderLimit:
    return RenderLimit("the result would be an integer over 10**100 (MAX_INTEGER)")


def _integer(value: Any) -> Any:
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        raise _too_big()
    return value


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_LENGTH:
        raise _too_long("a text" if isinstance(value, str) else "a list")
    return _integer(value)


def _power(base: Any, exponent: Any) -> Any:
    # The result has exponent * log2(base) bits: refuse before Python works them out.
    integers = isinstance(base, int) and isinstance(exponent, int)
    if (
        integers
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > _MAX_INTEGER_BITS
    ):
        raise _too_big()
    return _integer(base**exponent)


def _times(left: Any, right: Any) -> Any:
    for sequence, count in ((left, right), (right, left)):
        repeated = isinstance(sequence, str | list | tuple) and isinstance(count, int)
        if repeated and len(sequence) * max(count, 0) > MAX_LENGTH:
            raise _too_long("a text" if isinstance(sequence, str) else "a list")
    integers = isinstance(left, int) and isinstance(right, int)
    if integers and left.bit_length() + right.bit_length() > _MAX_INTEGER_BITS + 1:
        raise _too_big()
    return _integer(left * right)


def _plus(left: Any, right: Any) -> Any:
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    if sequences and len(left) + len(right) > MAX_LENGTH:
        raise _too_long("a text" if isinstance(left, str) else "a list")
    return _integer(left + right)


def _percent_widths(pattern: str) -> None:
    for match in _PERCENT_WIDTH.finditer(pattern):
        for width in match.groups():
            if width == "*" or (width is not None and int(width) > MAX_LENGTH):
                raise _too_long("a text")


def _percent(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _percent_widths(left)
    return _sized(left % right)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "**": _power,
    "*": _times,
    "+": _plus,
    "%": _percent,
}


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimit(f"a range over {MAX_RANGE:,} long (MAX_RANGE)")
    return numbers


def _bounded_iteration(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        _on_time()
        yield item


def _bounded_text(text: Any) -> Any:
    return _sized(text)


def _no_wide_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for argument in (*args, *kwargs.values()):
        if isinstance(argument, int) and argument > MAX_LENGTH:
            raise _too_long("a text")


def _width_checked(filter_: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(filter_)  # keeps jinja2's pass_environment mark
    def checked(*args: Any, **kwargs: Any) -> Any:
        _no_wide_arguments(args[1:], kwargs)
        if filter_ is do_format and isinstance(args[0], str):
            _percent_widths(args[0])
        return _sized(filter_(*args, **kwargs))

    return checked


def _format_widths(pattern: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """``str.format``: no literal width over the limit, and no argument that could be
    one when a width is itself a field (``{:>{}}``)."""
    for _, _, spec, _ in string.Formatter().parse(pattern):
        if not spec:
            continue
        if "{" in spec:
            _no_wide_arguments(args, kwargs)
        for number in _DIGITS.findall(spec):
            if int(number) > MAX_LENGTH:
                raise _too_long("a text")


def _bounded_concat(pieces: Iterable[str]) -> str:
    # Piece by piece, so that a long output is refused before it is all made.
    gathered: list[str] = []
    keep = gathered.append
    length = 0
    for piece in pieces:
        length += len(piece)
        if length > MAX_LENGTH:
            raise _too_long("a text")
        keep(piece)
    return "".join(gathered)


class _Guards(NodeTransformer):
    """Every ``for`` loop looks at the clock each turn; every ``~`` is checked for length."""

    def __init__(self, environment: BoundedEnvironment) -> None:
        self.environment = environment

    def _filter(self, node: nodes.Expr, name: str) -> nodes.Filter:
        guarded = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        guarded.set_environment(self.environment)
        return guarded

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        assert isinstance(node.iter, nodes.Expr)
        node.iter = self._filter(node.iter, _ITERATION_GUARD)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        self.generic_visit(node)
        return self._filter(node, _TEXT_GUARD)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """jinja2's read-only sandbox with the size and time limits of this module."""

    intercepted_binops = frozenset(_BINOPS)
    concat = staticmethod(_bounded_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.filters[_ITERATION_GUARD] = _bounded_iteration
        self.filters[_TEXT_GUARD] = _bounded_text
        for name, filter_ in (
            ("center", do_center),
            ("indent", do_indent),
            ("wordwrap", do_wordwrap),
            ("format", do_format),
        ):
            self.filters[name] = _width_checked(filter_)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        # Templates and expressions both pass here on their way to Python code.
        return super()._generate(_Guards(self).visit(source), name, filename, defer_init)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _on_time()
        return _BINOPS[operator](left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        pattern: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if value.__name__ == "format_map" and args else {}
            _format_widths(pattern, args, {**kwargs, **dict(mapping)})
            return str(_sized(wrapper(*args, **kwargs)))

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _on_time()
        if getattr(__obj, "__name__", None) in _WIDTH_METHODS and isinstance(
            getattr(__obj, "__self__", None), str
        ):
            _no_wide_arguments(args, kwargs)
        return _sized(super().call(__context, __obj, *args, **kwargs))

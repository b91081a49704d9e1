"""The attacks' knobs without importing torch: their valid ranges and their defaults.

A configuration (``--attack pgd:steps=-3``, a TOML ``[[attack]]`` table) is checked against these
ranges before any data is loaded, so a bad value is a one-line error instead of a failure deep
inside the attack. The shared vocabulary has one rule for every attack (:data:`VOCABULARY`:
``steps >= 1``, ``step_size > 0``...); an attack declares the ranges of its own knobs in its
registry entry (``AttackSpec.ranges``), and those win. The attack functions keep their own checks
for callers that use them directly.

:func:`static_knobs` reads an attack's keyword knobs and defaults from its source with ``ast``
when the registry names it as ``"module:function"``, so that ``advlab attacks`` lists them
without importing torch; a test checks that it agrees with ``inspect.signature``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ast

PER_CALL = ("target", "generator")  # keyword arguments an evaluation sets for each call


@dataclass(frozen=True)
class Range:
    """An interval of valid values: ``low``/``high`` (``None``: unbounded), open or closed ends;
    ``nonzero`` excludes 0. Values must be finite numbers (``None`` always passes: it means the
    attack's own default rule)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nonzero: bool = False

    def contains(self, value: Any) -> bool:
        if value is None:
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return not (self.nonzero and value == 0)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "a non-zero number" if self.nonzero else "a finite number"

    def requirement(self) -> str:
        """What ``x must ...``: ``be >= 1``, ``lie in [0, 1]``."""
        return f"{'lie' if self.low is not None and self.high is not None else 'be'} {self}"


AT_LEAST_ONE = Range(1)
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)

# The shared vocabulary (docs: DESIGN.md): one rule for every attack that has the knob.
VOCABULARY: dict[str, Range] = {
    "steps": AT_LEAST_ONE, "restarts": AT_LEAST_ONE, "binary_search_steps": AT_LEAST_ONE,
    "max_queries": AT_LEAST_ONE, "step_size": POSITIVE, "overshoot": NON_NEGATIVE,
    "confidence": NON_NEGATIVE, "coordinates_per_step": AT_LEAST_ONE,
}


def knob_problem(attack: str, key: str, value: Any,
                 ranges: Mapping[str, Range] | None = None) -> str | None:
    """What is wrong with ``value`` for knob ``key`` of ``attack`` (``None``: nothing). The
    attack's own ``ranges`` win over :data:`VOCABULARY`; a knob in neither is not checked."""
    valid = (ranges or {}).get(key) or VOCABULARY.get(key)
    if valid is None or valid.contains(value):
        return None
    return f"attack {attack!r}: {key} must {valid.requirement()}, got {value!r}"


def static_knobs(function: Callable[..., Any] | str) -> dict[str, Any]:
    """The keyword knobs of an attack and their defaults (``inspect.empty`` when required),
    without the per-call ``target`` and ``generator``.

    ``function`` is the attack, or ``"module:function"``: then its source file is parsed (never
    imported) and each default is the literal written in the signature (its source text when it
    is not a literal).
    """
    import ast  # here, not at the top: the CLI imports this module to build its parser
    import importlib.util
    import inspect

    if callable(function):
        return {p.name: p.default for p in inspect.signature(function).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in PER_CALL}
    module, _, name = function.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"attack {function!r}: module {module!r} not found")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args
            return {a.arg: inspect.Parameter.empty if d is None else _literal(d)
                    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                    if a.arg not in PER_CALL}
    raise ValueError(f"attack {function!r}: no function {name!r} in {spec.origin}")


def _literal(node: ast.expr) -> Any:
    import ast

    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)

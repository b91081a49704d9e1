"""What an evaluation runs: configured attacks (:class:`AttackRun`) and the eps grid.

An :class:`AttackRun` names a registered attack, the norm of its threat model, its knobs and
whether it works under the data set's full :class:`~advlab.domain.Domain` (``constraints =
"domain"``, the default) or only under its bounds (``"box"``: the unconstrained attack that the
reference libraries run, kept for contrast). Knobs are checked against the attack function's
signature and their valid ranges (:mod:`advlab.attacks.knobs`) when the run is built, so a typo
or ``steps=-3`` fails before any work starts.

Norms: :func:`expand_norms` turns an entry that names no norm into one run per norm of the eps
grid that the attack supports (what a configuration file and the CLI do), and
:func:`norm_coverage` records, for every attack × grid norm, the runs that cover it or why none
does, so that a norm grid an attack skips is never skipped silently.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from advlab import attacks
from advlab.attacks.knobs import knob_problem
from advlab.norms import NORMS, Norm

# Knobs that the runner sets itself: an attack run may not override them.
RESERVED = ("model", "x", "y", "threat", "target", "generator")
TARGETS = ("random", "least_likely", "next")


@dataclass(frozen=True)
class AttackRun:
    """One configured attack in an evaluation.

    Args:
        name: a registered attack (``advlab.attacks.ATTACKS``).
        norm: the threat model's norm; default: the attack's first supported norm.
        params: keyword knobs of the attack function (``steps``, ``restarts``...).
        label: the name in tables and figures; default ``name`` (plus the norm or constraints when
            that is needed to tell runs apart; see :func:`build_runs`).
        target: ``None`` (untargeted) or how to choose targets: ``random``, ``least_likely`` or
            ``next``.
        constraints: ``"domain"`` (the data set's Domain, the default) or ``"box"`` (bounds
            only: the unconstrained attack, scored under the box and reported with the share of
            its points that are valid in the real Domain).
    """

    name: str
    norm: Norm
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    target: str | None = None
    constraints: str = "domain"

    @property
    def spec(self) -> attacks.AttackSpec:
        return attacks.get(self.name)

    @property
    def minimal_norm(self) -> bool:
        return self.spec.minimal_norm

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "name": self.name, "norm": self.norm,
                "params": dict(self.params), "target": self.target,
                "constraints": self.constraints, "minimal_norm": self.minimal_norm}


def attack_parameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword knobs of a registered attack, from its signature (what a run may set)."""
    spec = attacks.get(name)
    return {p.name: p for p in inspect.signature(spec.fn).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in RESERVED
            and p.name not in spec.fixed}


def convert_parameter(name: str, key: str, value: Any) -> Any:
    """Check ``key`` is a knob of attack ``name`` and convert a string ``value`` to its type."""
    params = attack_parameters(name)
    if key not in params:
        raise ValueError(f"attack {name!r} has no parameter {key!r}; its parameters: "
                         f"{', '.join(sorted(params))}")
    if not isinstance(value, str):
        return value
    default = params[key].default
    hint = _type_hint(attacks.get(name).fn, key)
    if isinstance(default, bool) or hint is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"attack {name!r}: {key}={value!r} is not a boolean")
    for kind in (int, float):
        if isinstance(default, kind) or hint is kind or (kind is float and hint == float | None):
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"attack {name!r}: {key}={value!r} is not {kind.__name__}") \
                    from None
    return value


def _type_hint(fn: Any, key: str) -> Any:
    try:
        return typing.get_type_hints(fn).get(key)
    except Exception:  # noqa: BLE001 - hints are a convenience for string conversion only
        return None


def make_run(entry: Mapping[str, Any] | str | AttackRun) -> AttackRun:
    """An :class:`AttackRun` from a name, a dict (a TOML ``[[attack]]`` table) or a run.

    The dict holds ``name`` and optionally ``norm``, ``label``, ``target``, ``constraints``;
    every other key is a knob of the attack, checked against its signature.
    """
    if isinstance(entry, AttackRun):
        return _checked(entry)
    if isinstance(entry, str):
        entry = {"name": entry}
    entry = dict(entry)
    if "name" not in entry:
        raise ValueError(f"attack entry {entry}: missing key 'name'")
    name = str(entry.pop("name"))
    spec = attacks.get(name)
    norm = entry.pop("norm", spec.norms[0])
    label = str(entry.pop("label", ""))
    target = entry.pop("target", None)
    constraints = str(entry.pop("constraints", "domain"))
    params = dict(entry.pop("params", {}))
    params.update(entry)
    params = {k: convert_parameter(name, k, v) for k, v in params.items()}
    return _checked(AttackRun(name, norm, params, label, target, constraints))


def _checked(run: AttackRun) -> AttackRun:
    spec = run.spec
    if run.norm not in spec.norms:
        raise ValueError(f"attack {run.name!r} supports the norms {', '.join(spec.norms)}, "
                         f"not {run.norm!r}")
    defaults = attack_parameters(run.name)
    for key, value in run.params.items():
        value = convert_parameter(run.name, key, value)
        default = defaults[key].default
        if isinstance(default, int) and not isinstance(default, bool) and \
                isinstance(value, float):
            raise ValueError(f"attack {run.name!r}: {key} must be an integer, got {value!r}")
        hint = _type_hint(spec.fn, key)
        choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()
        if choices and value not in choices:
            raise ValueError(f"attack {run.name!r}: {key} must be one of "
                             f"{', '.join(map(repr, choices))}, got {value!r}")
        problem = knob_problem(run.name, key, value, spec.ranges)
        if problem is not None:
            raise ValueError(problem)
    if run.target is not None and run.target not in TARGETS:
        raise ValueError(f"attack {run.name!r}: target must be one of {', '.join(TARGETS)}, "
                         f"not {run.target!r}")
    if run.target is not None and not spec.targeted:
        raise ValueError(f"attack {run.name!r} has no targeted mode")
    if run.constraints not in ("domain", "box"):
        raise ValueError(f"attack {run.name!r}: constraints must be 'domain' or 'box', "
                         f"not {run.constraints!r}")
    return run


def build_runs(entries: Iterable[Mapping[str, Any] | str | AttackRun]) -> list[AttackRun]:
    """Runs with unique labels: ``name``, then ``name-norm``, then ``name-norm-box`` or a suffix."""
    runs = [make_run(e) for e in entries]
    if not runs:
        raise ValueError("no attack to run: give at least one")
    labelled: list[AttackRun] = []
    for run in runs:
        label = run.label or run.name
        if not run.label:
            same = [r for r in runs if r.name == run.name and not r.label]
            if len({r.norm for r in same}) > 1:
                label = f"{run.name}-{run.norm}"
            if run.constraints == "box":
                label += " (box only)"
            if run.target is not None:
                label += f" (target {run.target})"
        labels = {r.label for r in labelled}
        base, k = label, 2
        while label in labels:
            label, k = f"{base} #{k}", k + 1
        labelled.append(AttackRun(run.name, run.norm, dict(run.params), label, run.target,
                                  run.constraints))
    return labelled


def normalise_eps_grid(eps_grid: Mapping[str, Sequence[float]] | Sequence[float],
                       runs: Sequence[AttackRun]) -> dict[str, list[float]]:
    """``{norm: sorted eps}``, checked: positive, finite, one grid for every norm an attack uses.

    A plain list is accepted when all runs share one norm.
    """
    norms_used = sorted({r.norm for r in runs}, key=NORMS.index)
    if not isinstance(eps_grid, Mapping):
        if len(norms_used) != 1:
            raise ValueError(f"eps grid: the attacks use the norms {', '.join(norms_used)}; give "
                             "one grid per norm, e.g. {'linf': [...], 'l2': [...]}")
        eps_grid = {norms_used[0]: eps_grid}
    grid: dict[str, list[float]] = {}
    for norm, values in eps_grid.items():
        if norm not in NORMS:
            raise ValueError(f"eps grid: unknown norm {norm!r}; known: {', '.join(NORMS)}")
        if isinstance(values, (int, float)):
            values = [values]
        clean = []
        for v in values:
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"eps grid {norm}: {v!r} is not a number") from None
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"eps grid {norm}: eps must be positive and finite, got {v}")
            clean.append(v)
        if not clean:
            raise ValueError(f"eps grid {norm}: empty")
        grid[norm] = sorted(set(clean))
    missing = [n for n in norms_used if n not in grid]
    if missing:
        raise ValueError(f"eps grid: no eps given for the norm(s) {', '.join(missing)} used by "
                         f"{', '.join(r.label or r.name for r in runs if r.norm in missing)}")
    return {n: grid[n] for n in sorted(grid, key=NORMS.index) if n in norms_used}


def worst_case_members(runs: Sequence[AttackRun]) -> list[AttackRun]:
    """The runs the worst case is taken over: those under the data set's Domain. A run under the
    bounds alone (``constraints="box"``) attacks a larger threat model (its points need not be
    valid inputs), so it is reported for contrast but never lowers the worst case, unless every
    run of its norm is box-only."""
    out = []
    for run in runs:
        same_norm = [r for r in runs if r.norm == run.norm]
        if run.constraints == "domain" or all(r.constraints == "box" for r in same_norm):
            out.append(run)
    return out


def expand_norms(entries: Iterable[Mapping[str, Any] | str | AttackRun],
                 grid_norms: Iterable[str]) -> list[Mapping[str, Any] | AttackRun]:
    """One entry per norm for the entries that name none: an attack given without a norm runs at
    every norm of the eps grid (``grid_norms``) that it supports, except the norms that another
    entry of the same attack (name, constraints and target) names explicitly. Entries that name
    a norm, and :class:`AttackRun` objects, are kept as they are.

    Raises ``ValueError`` when an attack supports none of the grid's norms.
    """
    items = [{"name": e} if isinstance(e, str) else e for e in entries]
    grid = [n for n in NORMS if n in set(grid_norms)]

    def key(e: Mapping[str, Any]) -> tuple[Any, ...]:
        return (e.get("name"), str(e.get("constraints", "domain")), e.get("target"))

    explicit = {(key(e), e.get("norm")) for e in items
                if not isinstance(e, AttackRun) and "norm" in e}
    out: list[Mapping[str, Any] | AttackRun] = []
    for e in items:
        if isinstance(e, AttackRun) or "norm" in e or not isinstance(e, Mapping):
            out.append(e)
            continue
        spec = attacks.get(e.get("name"))  # type: ignore[arg-type]
        norms = [n for n in grid if n in spec.norms and (key(e), n) not in explicit]
        if not norms and not any(n in spec.norms for n in grid):
            raise ValueError(f"attack {spec.name!r} supports the norms {', '.join(spec.norms)}; "
                             f"the eps grid has {', '.join(grid) or 'none'}: add a grid for one "
                             "of its norms")
        out += [{**e, "norm": n} for n in norms]
    return out


def norm_coverage(runs: Sequence[AttackRun],
                  grid_norms: Iterable[str]) -> list[dict[str, Any]]:
    """Every attack × norm of the eps grid: the labels of the runs that cover it, or, when none
    does, why (``reason``). The summary records it (``config.coverage``) and the report shows it,
    so that a norm an attack did not run at is visible."""
    grid = [n for n in NORMS if n in set(grid_norms)]
    rows = []
    for name in dict.fromkeys(r.name for r in runs):
        spec = attacks.get(name)
        mine = [r for r in runs if r.name == name]
        for norm in grid:
            labels = [r.label or r.name for r in mine if r.norm == norm]
            reason = None
            if not labels:
                used = ", ".join(sorted({r.norm for r in mine}, key=NORMS.index))
                reason = (f"not supported: {name} supports {', '.join(spec.norms)}"
                          if norm not in spec.norms else f"its entries name the norm {used}")
            rows.append({"attack": name, "norm": norm, "runs": labels, "reason": reason})
    return rows


def coverage_line(coverage: Sequence[Mapping[str, Any]]) -> str:
    """The coverage as one log line: ``runs fgsm linf, l2; pgd linf · skipped pgd × l2 (...)``."""
    ran: dict[str, list[str]] = {}
    for row in coverage:
        if row["runs"]:
            ran.setdefault(row["attack"], []).append(row["norm"])
    skipped = [f"{r['attack']} × {r['norm']} ({r['reason']})" for r in coverage if not r["runs"]]
    text = "attack × norm: " + "; ".join(f"{a} {', '.join(n)}" for a, n in ran.items())
    return text + (" · skipped: " + "; ".join(skipped) if skipped else "")

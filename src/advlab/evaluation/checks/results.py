"""Result sanity checks (see :mod:`advlab.evaluation.checks`): robust accuracy monotone in eps,
iterative at least single-step, large eps reaches zero, white box at least transfer."""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from advlab.evaluation.checks.check import Check

Rows = Sequence[Mapping[str, Any]]
Point = tuple[Mapping[str, Any], str, float, float]  # (row, norm, eps, robust accuracy)
SINGLE_STEP = frozenset({"fgsm"})
ITERATIVE = frozenset({"bim", "pgd"})
MIN_SUCCESS = 0.95  # "near zero" robust accuracy: <= 5% of the clean-correct samples survive
OP = {True: "<=", False: ">"}


def result_checks(summary: Mapping[str, Any]) -> list[Check]:
    """The four result checks on a summary (schema ``advlab.evaluation/1``), in the order of
    the module docstring. Reads ``results``, ``worst_case``, ``curves``, ``clean_accuracy``,
    ``config.n`` (or ``dataset_card.n``) and ``dataset_card.input_shape``; null and NaN values
    are skipped, and rows with ``"knowledge": "transfer"`` are not white-box results."""
    rows = [r for r in summary.get("results") or [] if isinstance(r, Mapping)]
    tol, tol_text = _tolerance(summary)
    return [_monotone(summary, rows, tol, tol_text), _iterative(rows, tol, tol_text),
            _large_eps(summary, rows), _whitebox_vs_transfer(rows, tol, tol_text)]


def _judge(name: str, outcomes: list[tuple[bool, str]], scope: str, meaning: str,
           verified: str) -> Check:
    """Failed (error) when any outcome is not ok; inconclusive (passed, warning) when there
    are none; the first four relevant outcomes are the evidence."""
    items = [text for ok, text in outcomes if not ok] or [text for _, text in outcomes]
    listed = "; ".join(items[:4]) + (f"; and {len(items) - 4} more" if len(items) > 4 else "")
    if not all(ok for ok, _ in outcomes):
        return Check(name, False, f"{listed} ({scope})", meaning)
    if not outcomes:
        return Check(name, True, f"inconclusive: {scope}", "nothing to compare in this run",
                     "warning")
    return Check(name, True, f"{listed} ({scope})", f"verified: {verified}")


def _num(value: Any) -> float | None:
    """A finite float, or None (null, NaN, inf, non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _label(row: Mapping[str, Any]) -> str:
    return str(row.get("attack") or row.get("name") or "?")


def _whitebox(row: Mapping[str, Any]) -> bool:
    return row.get("knowledge") in (None, "whitebox", "white-box", "white_box")


def _points(rows: Rows) -> list[Point]:
    """The rows with a finite eps and robust accuracy."""
    out = [(r, str(r.get("norm")), _num(r.get("eps")), _num(r.get("robust_accuracy")))
           for r in rows]
    return [(r, n, e, a) for r, n, e, a in out if e is not None and a is not None]


def _best(points: Sequence[Point]) -> dict[tuple[str, float], tuple[float, str]]:
    """The lowest robust accuracy, and whose it is, at each (norm, eps)."""
    best: dict[tuple[str, float], tuple[float, str]] = {}
    for r, norm, eps, acc in points:
        if (norm, eps) not in best or acc < best[(norm, eps)][0]:
            best[(norm, eps)] = (acc, _label(r))
    return best


def _tolerance(summary: Mapping[str, Any]) -> tuple[float, str]:
    """One sample's worth of accuracy plus 0.005 (n from the config, else the dataset card)."""
    n = (summary.get("config") or {}).get("n") or (summary.get("dataset_card") or {}).get("n")
    if isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) > 0:
        return 1 / int(n) + 0.005, f"tolerance {1 / int(n) + 0.005:.3g} = 1/{n} + 0.005"
    return 0.01, "tolerance 0.01, n unknown"


def _series(summary: Mapping[str, Any], rows: Rows) -> dict[tuple[str, str], dict[float, float]]:
    """Robust accuracy by eps for each (attack, norm): result rows, the worst case, then the
    curve points not already known."""
    out: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for r, norm, eps, acc in _points(rows):
        out[(_label(r), norm)].setdefault(eps, acc)
    for _, norm, eps, acc in _points(summary.get("worst_case") or []):
        out[("worst case", norm)].setdefault(eps, acc)
    for norm, curve in (summary.get("curves") or {}).items():
        for label, values in (curve.get("series") or {}).items():
            for eps, acc in zip(curve.get("eps") or [], values or [], strict=False):
                if _num(eps) is not None and _num(acc) is not None:
                    out[(str(label), str(norm))].setdefault(float(eps), float(acc))
    return out


def _monotone(summary: Mapping[str, Any], rows: Rows, tol: float, tol_text: str) -> Check:
    """Carlini et al. 2019, basic sanity tests: "verify increasing the perturbation budget
    strictly increases attack success rate", on the success vs. budget curves. Each point meets
    the lowest accuracy at any smaller eps, so a slow upward drift is caught too."""
    outcomes = []
    for (label, norm), points in sorted(_series(summary, rows).items()):
        low: tuple[float, float] | None = None  # (eps, lowest accuracy so far)
        for eps in sorted(points):
            if low is not None:
                ok = points[eps] <= low[1] + tol
                outcomes.append((ok, f"{label} ({norm}): robust accuracy {points[eps]:.3g} at "
                                     f"eps={eps:g} {OP[ok]} {low[1]:.3g} at eps={low[0]:g}"))
            if low is None or points[eps] < low[1]:
                low = (eps, points[eps])
    return _judge("accuracy_monotone_in_eps", outcomes,
                  tol_text if outcomes else "no attack ran at more than one eps",
                  "a larger ball contains the smaller one, so robust accuracy cannot rise with "
                  "eps: the attack misses examples it found at a smaller budget (too few steps, "
                  "a step size that does not scale with eps, unlucky random starts) or the "
                  "gradients are masked", "robust accuracy does not increase with eps")


def _iterative(rows: Rows, tol: float, tol_text: str) -> Check:
    """Carlini et al. 2019, basic sanity tests: "verify iterative attacks perform better than
    single-step attacks". Each white-box BIM or PGD row (by registered ``name``) meets the best
    FGSM row at its norm and eps."""
    points = _points([r for r in rows if _whitebox(r)])
    kind = {id(r): str(r.get("name") or r.get("attack")) for r, *_ in points}
    single = _best([p for p in points if kind[id(p[0])] in SINGLE_STEP])
    outcomes = []
    for r, norm, eps, acc in sorted(points, key=lambda p: (p[1], p[2], _label(p[0]))):
        if kind[id(r)] in ITERATIVE and (norm, eps) in single:
            s_acc, s_label = single[(norm, eps)]
            ok = acc <= s_acc + tol
            outcomes.append((ok, f"{_label(r)} ({norm}, eps={eps:g}): robust accuracy "
                                 f"{acc:.3g} {OP[ok]} {s_label} {s_acc:.3g}"))
    return _judge("iterative_at_least_single_step", outcomes, tol_text if outcomes else
                  "no norm and eps where both FGSM and an iterative attack (BIM, PGD) ran",
                  "possible gradient masking: a single step does better than many, so the loss "
                  "surface is likely obfuscated (or the iterative attack is misconfigured: step "
                  "size, steps)", "iterative attacks do at least as well as a single step")


def _whitebox_vs_transfer(rows: Rows, tol: float, tol_text: str) -> Check:
    """Carlini et al. 2019, sanity tests: black-box and transfer attacks should not outperform
    white-box attacks; when they do, the white-box gradients are obfuscated (Athalye et al.
    2018). Each transfer row meets the best white-box row at its norm and eps."""
    white = _best(_points([r for r in rows if _whitebox(r)]))
    transfer = [r for r in rows if r.get("knowledge") == "transfer"]
    outcomes = []
    for r, norm, eps, acc in _points(transfer):
        if (norm, eps) in white:
            w_acc, w_label = white[(norm, eps)]
            ok = w_acc <= acc + tol
            outcomes.append((ok, f"best white-box {w_label} ({norm}, eps={eps:g}): robust "
                                 f"accuracy {w_acc:.3g} {OP[ok]} transfer {_label(r)} {acc:.3g}"))
    scope = (tol_text if outcomes else "no transfer attack ran" if not transfer else
             f"{len(transfer)} transfer rows, none at a norm and eps where a white-box attack ran")
    return _judge("whitebox_at_least_transfer", outcomes, scope,
                  "possible gradient masking: an attack without the model's gradients beats "
                  "every attack that has them, so the white-box gradients mislead; do not trust "
                  "the white-box numbers, try BPDA or a gradient-free attack",
                  "white-box attacks do at least as well as transfer attacks")


def _large(norm: str, dim: int | None) -> float:
    """The smallest eps whose ball around any x in [0, 1]^D holds the centre of the box, so
    that every input can reach one common point: L∞ 1/2, L2 sqrt(D)/2, L1 D/2, L0 D."""
    d = math.nan if dim is None else dim
    return {"linf": 0.5, "l2": math.sqrt(d) / 2, "l1": d / 2, "l0": d}.get(norm, math.nan)


def _large_eps(summary: Mapping[str, Any], rows: Rows) -> Check:
    """Carlini et al. 2019, basic sanity tests: "with high distortion, model accuracy should
    reach levels of random guessing", and unbounded attacks should reach 100% success. Per
    norm: unbounded minimal-norm rows if any, else the largest eps over the white-box rows and
    the worst case, judged only when large (:func:`_large`; inputs in [0, 1] assumed). Near 0
    is stricter than random guessing: with that much room an attack should break nearly all."""
    shape = (summary.get("dataset_card") or {}).get("input_shape")
    dim = math.prod(int(s) for s in shape) if isinstance(shape, list) and shape else None
    clean = _num(summary.get("clean_accuracy"))
    limit = (1 - MIN_SUCCESS) * (1.0 if clean is None else clean)
    outcomes, notes = [], []
    for norm in sorted({str(r.get("norm")) for r in rows}):
        mine = [r for r in rows if str(r.get("norm")) == norm and _whitebox(r)]
        unbounded = [(r, rate) for r in mine if r.get("minimal_norm") and _num(r.get("eps"))
                     is None and (rate := _num(r.get("success_rate"))) is not None]
        outcomes += [(rate >= MIN_SUCCESS, f"{_label(r)} ({norm}, unbounded minimal-norm): "
                      f"success rate {rate:.3g} {'>=' if rate >= MIN_SUCCESS else '<'} "
                      f"{MIN_SUCCESS}") for r, rate in unbounded]
        bounded = _points(mine)
        if unbounded or not bounded:
            continue
        top, large = max(e for _, _, e, _ in bounded), _large(norm, dim)
        if not top >= large:  # also when large is NaN: no input_shape, or an unknown norm
            notes.append(f"{norm}: largest eps {top:g} is below the large eps " + (
                f"{large:g}" if large == large else "(unknown without input_shape)"))
            continue
        acc = min(a for _, p, e, a in bounded + _points(summary.get("worst_case") or [])
                  if p == norm and e == top)
        ok = acc <= limit + 1e-12
        outcomes.append((ok, f"{norm}: robust accuracy {acc:.3g} at the largest eps {top:g} "
                             f"(large: >= {large:g}) {OP[ok]} {limit:.3g} (5% of clean accuracy)"))
    return _judge("large_eps_reaches_zero", outcomes, "; ".join(notes + [
                  f"needs success >= {MIN_SUCCESS} of unbounded minimal-norm attacks, else "
                  "robust accuracy near 0 at a large eps"]),
                  "where (almost) every input could be moved to another class, the attacks "
                  "still leave many samples unbroken: they are failing (too few steps, wrong "
                  "step size) or the gradients are masked",
                  "with a large budget the attacks break (nearly) every sample")


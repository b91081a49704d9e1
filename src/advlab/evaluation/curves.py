"""Security-evaluation curves (Biggio and Roli 2018, "Wild Patterns", Section 4): robust
accuracy against the attacker's budget eps, one curve per attack plus the per-sample worst case.

A bounded attack contributes one point per eps it ran at. A minimal-norm attack (DeepFool, C&W)
contributes its whole curve from one unbounded run: a sample is still robust at eps exactly when
the smallest successful perturbation the attack found is larger than eps (or it found none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from advlab.evaluation.runs import AttackRun, worst_case_members

WORST = "worst case"


def robust_at(clean_correct: np.ndarray, success: np.ndarray, norms: np.ndarray,
              eps: float) -> np.ndarray:
    """Per-sample robustness at ``eps`` from a minimal-norm run: correct, and no success of norm
    ``<= eps``. The tolerance matches :meth:`ThreatModel.contains` (1e-6, relative for large
    eps)."""
    tol = 1e-6 * max(1.0, eps)
    return clean_correct & ~(success & (norms <= eps + tol))


def security_curves(runs: Sequence[AttackRun], grid: Mapping[str, list[float]],
                    data: Mapping[str, Any], clean_correct: np.ndarray) -> dict[str, Any]:
    """``{norm: {"eps": [0, *grid], "series": {label: [...], "worst case": [...]}}}``.

    At eps = 0 every curve starts at the clean accuracy.
    """
    curves: dict[str, Any] = {}
    clean = float(clean_correct.mean())
    for norm, values in grid.items():
        members = [r for r in runs if r.norm == norm]
        counted = {r.label for r in worst_case_members(runs)}
        series: dict[str, list[float]] = {}
        worst = [clean_correct.copy() for _ in values]
        for run in members:
            points = [clean]
            for j, eps in enumerate(values):
                if run.minimal_norm:
                    a = data["runs"][(run.label, None)]
                    robust = robust_at(clean_correct, a["success"], a[norm], eps)
                else:
                    robust = clean_correct & ~data["runs"][(run.label, eps)]["success"]
                if run.label in counted:
                    worst[j] &= robust
                points.append(float(robust.mean()))
            series[run.label] = points
        if len([r for r in members if r.label in counted]) > 1:
            series[WORST] = [clean] + [float(w.mean()) for w in worst]
        curves[norm] = {"eps": [0.0, *values], "series": series}
        dense = {r.label: minimal_norm_curve(clean_correct, data["runs"][(r.label, None)],
                                             norm, values[-1])
                 for r in members if r.minimal_norm}
        if dense:
            curves[norm]["minimal_norm"] = dense
    return curves


def minimal_norm_curve(clean_correct: np.ndarray, run: Mapping[str, Any], norm: str,
                       eps_max: float, points: int = 200) -> dict[str, list[float]]:
    """A minimal-norm attack's whole curve: robust accuracy at every eps in ``[0, eps_max]``,
    as a step function with a step at each successful sample's minimal norm (at most
    ``points`` steps, thinned evenly)."""
    n = clean_correct.size
    hits = np.sort(run[norm][run["success"] & clean_correct])
    hits = hits[hits <= eps_max]
    if hits.size > points:
        hits = hits[np.linspace(0, hits.size - 1, points).round().astype(int)]
    eps = [0.0, *map(float, hits), float(eps_max)]
    robust = [float(robust_at(clean_correct, run["success"], run[norm], e).sum()) / n
              for e in eps]
    return {"eps": eps, "robust_accuracy": robust}

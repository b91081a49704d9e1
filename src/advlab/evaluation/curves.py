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

from advlab.evaluation.runs import AttackRun

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
                worst[j] &= robust
                points.append(float(robust.mean()))
            series[run.label] = points
        if len(members) > 1:
            series[WORST] = [clean] + [float(w.mean()) for w in worst]
        curves[norm] = {"eps": [0.0, *values], "series": series}
    return curves

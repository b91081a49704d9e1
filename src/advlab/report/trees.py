"""Report pieces for tree ensembles: the model card, certified against empirical robust
accuracy, and the feature-level perturbation table of the evasions under the Domain.

Each function returns JSON-ready rows; :func:`markdown` renders any of them as a table (the
case study in ``docs/trees.md`` is made of them, by ``benchmarks/trees_case_study.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def card_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The model card of :meth:`advlab.trees.TreeEnsemble.card` as (property, value) rows."""
    rows = [{"property": k.replace("_", " "), "value": card[k]}
            for k in ("library", "trees", "max_depth", "mean_depth", "leaves", "splits",
                      "features", "features_used")]
    top = ", ".join(f"{t['feature']} ({t['splits']})" for t in card["top_features"][:8])
    return rows + [{"property": "most split features (splits)", "value": top}]


def robust_accuracy_rows(minimal: Tensor, upper: Tensor, certified_radius: Tensor,
                         clean_correct: Tensor, eps: Sequence[float]) -> list[dict[str, Any]]:
    """Per eps: the certified robust accuracy (Chen et al. radius ``> eps``), the exact one
    (MILP minimal norm ``> eps``) and an attack's empirical one (``upper``: its norms, inf
    where it failed). Certified <= exact <= empirical, sample by sample."""
    n = max(1, clean_correct.numel())
    rows = []
    for e in eps:
        rows.append({"eps": e,
                     "certified": float((clean_correct & (certified_radius > e)).sum()) / n,
                     "exact (MILP)": float((clean_correct & (minimal > e)).sum()) / n,
                     "empirical (attack)": float((clean_correct & (upper > e)).sum()) / n})
    return rows


def feature_rows(x: Tensor, x_adv: Tensor, success: Tensor, names: Sequence[str], *,
                 top: int = 12) -> list[dict[str, Any]]:
    """The features the successful evasions changed: how often, the mean and largest absolute
    change when changed, and the direction, most often changed first."""
    delta = (x_adv - x)[success]
    changed = delta.abs() > 1e-7
    count = changed.sum(0)
    order = torch.argsort(count, descending=True, stable=True)
    rows = []
    for j in order[:top].tolist():
        if int(count[j]) == 0:
            break
        d = delta[changed[:, j], j]
        rows.append({"feature": names[j], "changed in": f"{int(count[j])}/{int(success.sum())}",
                     "mean abs delta": float(d.abs().mean()),
                     "max abs delta": float(d.abs().max()),
                     "up / down": f"{int((d > 0).sum())} / {int((d < 0).sum())}"})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """A markdown table of ``rows`` (floats with 4 significant digits; rates as percents)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])

    def cell(k: str, v: Any) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "–"
            rate = k in ("certified", "exact (MILP)", "empirical (attack)", "success")
            return f"{v:.1%}" if rate else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---" for _ in keys) + "|"]
    lines += ["| " + " | ".join(cell(k, r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)

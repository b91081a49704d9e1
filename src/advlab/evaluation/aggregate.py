"""From per-sample records to the figures of a summary: never an average over attacks.

Robust accuracy counts a sample as robust when it is classified correctly and the attack failed
on it. The worst case over several attacks (of one norm, at one eps) counts a sample as robust
only when *every* attack failed on it: the per-sample minimum, as AutoAttack reports it (an
average of the attacks' accuracies would overstate robustness). A minimal-norm attack succeeds
at eps when its smallest successful perturbation has norm <= eps, so one unbounded run gives its
whole curve (:mod:`advlab.evaluation.curves`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from advlab.data.base import Dataset
from advlab.evaluation.cascade import cascade_summary
from advlab.evaluation.curves import robust_at, security_curves
from advlab.evaluation.runs import AttackRun, worst_case_members
from advlab.norms import NORMS

TOP_FEATURES = 10
HISTOGRAM_NORM = {"linf": "linf", "l2": "l2", "l1": "l1", "l0": "l0"}


def concatenate(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-sample arrays over all batches: ``y``, ``clean_correct``, ``x_l2`` and, per
    ``(label, eps)``, the run's arrays and its summed counters; ``seconds``, the batches' wall
    time. One pass over ``records``, which may stream from disk: only compact arrays are kept."""
    columns: dict[str, list[np.ndarray]] = {"index": [], "y": [], "clean_correct": [],
                                            "x_l2": []}
    dtypes = {"index": np.int64, "y": np.int64, "clean_correct": bool, "x_l2": np.float64}
    out: dict[str, Any] = {"runs": {}, "seconds": 0.0}
    for rec in records:
        for key, dtype in dtypes.items():
            columns[key].append(np.asarray(rec[key], dtype=dtype))
        out["seconds"] += rec.get("seconds", sum(run["seconds"] for run in rec["runs"]))
        for run in rec["runs"]:
            key = (run["label"], run["eps"])
            acc = out["runs"].setdefault(key, {"success": [], "valid": [], "gradients": 0,
                                               "forwards": 0, "seconds": 0.0,
                                               **{p: [] for p in NORMS}})
            for name in ("success", "valid", *NORMS):
                acc[name].append(np.asarray(run[name], dtype=float if name in NORMS else bool))
            for name in ("gradients", "forwards", "seconds"):
                acc[name] += run[name]
            if "feature_abs_delta" in run:
                acc["feature_abs_delta"] = acc.get("feature_abs_delta", 0) + np.asarray(
                    run["feature_abs_delta"])
                acc["feature_changed"] = acc.get("feature_changed", 0) + np.asarray(
                    run["feature_changed"])
            acc.setdefault("examples", []).extend(run.get("examples", []))
            if "broken_by" in run:  # an AutoAttack cascade (advlab.evaluation.cascade)
                acc["stages"] = run["stages"]
                acc.setdefault("broken_by", []).append(np.asarray(run["broken_by"], np.int64))
    for key, dtype in dtypes.items():
        out[key] = np.concatenate(columns[key]) if columns[key] else np.zeros(0, dtype)
    for acc in out["runs"].values():
        for name in ("success", "valid", *NORMS, *(["broken_by"] if "broken_by" in acc else [])):
            acc[name] = np.concatenate(acc[name])
    return out


def summarise(records: Iterable[Mapping[str, Any]], runs: Sequence[AttackRun],
              grid: Mapping[str, list[float]], dataset: Dataset) -> dict[str, Any]:
    """The aggregate part of a summary (schema ``advlab.evaluation/1``), from one pass over the
    batch records (sorted by batch); ``timing`` holds the batches' and the attacks' seconds."""
    data = concatenate(records)
    y, correct = data["y"], data["clean_correct"]
    k = dataset.num_classes
    results, robust_sets = [], {}
    for run in runs:
        for eps in ([None] if run.minimal_norm else grid[run.norm]):
            arrays = data["runs"][(run.label, eps)]
            results.append(_row(run, eps, arrays, correct, y, k, data["x_l2"]))
            if run.minimal_norm:
                for e in grid[run.norm]:
                    robust = robust_at(correct, arrays["success"], arrays[run.norm], e)
                    robust_sets[(run.label, run.norm, e)] = robust
                    results.append(_derived_row(run, e, robust, arrays, correct, y, k))
            else:
                robust_sets[(run.label, run.norm, eps)] = correct & ~arrays["success"]
    worst = []
    counted = {r.label for r in worst_case_members(runs)}
    for norm, values in grid.items():
        for eps in values:
            members = [label for (label, p, e) in robust_sets
                       if p == norm and e == eps and label in counted]
            robust = np.logical_and.reduce([robust_sets[(m, norm, eps)] for m in members])
            worst.append({"norm": norm, "eps": eps, "robust_accuracy": _rate(robust),
                          "attacks": members, "per_class_robust_accuracy":
                              per_class(robust, y, k)})
    return {
        "clean_accuracy": _rate(correct),
        "per_class_clean_accuracy": per_class(correct, y, k),
        "results": results, "worst_case": worst,
        "curves": security_curves(runs, grid, data, correct),
        "histograms": _histograms(runs, grid, data),
        "gallery": _gallery(runs, data) if len(dataset.input_shape) > 1 else [],
        "tabular": _tabular(runs, data, dataset) if len(dataset.input_shape) == 1 else {},
        "timing": {"batch_seconds": data["seconds"],
                   "attack_seconds": sum(a["seconds"] for a in data["runs"].values())},
    }


def _row(run: AttackRun, eps: float | None, a: Mapping[str, Any], correct: np.ndarray,
         y: np.ndarray, k: int, x_l2: np.ndarray) -> dict[str, Any]:
    """One attack call's row (every sample ran the attack at this eps)."""
    robust = correct & ~a["success"]
    row = _common_row(run, eps, robust, a, correct, y, k, derived=False)
    success = correct & a["success"]  # successes on clean-correct samples (the others: no attack)
    # DeepFool's empirical robustness: mean ||delta||_2 / ||x||_2 over the successes.
    ratio = a["l2"][success] / np.maximum(x_l2[success], 1e-12)
    row["empirical_robustness"] = float(ratio.mean()) if run.minimal_norm and ratio.size \
        else None
    row.update(gradients=int(a["gradients"]), forwards=int(a["forwards"]),
               seconds=round(float(a["seconds"]), 3))
    if "broken_by" in a:
        row["cascade"] = cascade_summary(a["stages"], a["broken_by"], correct)
    return row


def _derived_row(run: AttackRun, eps: float, robust: np.ndarray, a: Mapping[str, Any],
                 correct: np.ndarray, y: np.ndarray, k: int) -> dict[str, Any]:
    """A minimal-norm attack's row at a grid eps, read off its unbounded run (no new work)."""
    row = _common_row(run, eps, robust, a, correct, y, k, derived=True)
    row.update(empirical_robustness=None, gradients=0, forwards=0, seconds=0.0)
    return row


def _common_row(run: AttackRun, eps: float | None, robust: np.ndarray, a: Mapping[str, Any],
                correct: np.ndarray, y: np.ndarray, k: int, *, derived: bool) -> dict[str, Any]:
    """Rates and norm statistics of the successes (clean-correct samples no longer robust)."""
    success = correct & ~robust
    row: dict[str, Any] = {
        "attack": run.label, "name": run.name, "norm": run.norm, "eps": eps,
        "minimal_norm": run.minimal_norm, "constraints": run.constraints, "derived": derived,
        "robust_accuracy": _rate(robust),
        "success_rate": _rate(success[correct]) if correct.any() else math.nan}
    for p in NORMS:
        values = a[p][success]
        row[f"median_{p}"] = float(np.median(values)) if values.size else math.nan
        row[f"mean_{p}"] = float(values.mean()) if values.size else math.nan
    row["valid_rate"] = _rate(a["valid"])
    row["per_class_robust_accuracy"] = per_class(robust, y, k)
    return row


def per_class(robust: np.ndarray, y: np.ndarray, k: int) -> list[float | None]:
    """Share of each class's samples that are robust (None for a class with no sample)."""
    out: list[float | None] = []
    for c in range(k):
        members = y == c
        out.append(float(robust[members].mean()) if members.any() else None)
    return out


def _rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else math.nan


def _histograms(runs: Sequence[AttackRun], grid: Mapping[str, list[float]],
                data: Mapping[str, Any]) -> dict[str, Any]:
    """Per-sample norms of the successes: minimal-norm runs, and each bounded run's largest eps.

    Bounded L∞ attacks hit the eps boundary, so their L2 norm is the informative one.
    """
    out = {}
    for run in runs:
        eps = None if run.minimal_norm else grid[run.norm][-1]
        a = data["runs"][(run.label, eps)]
        ok = a["success"] & data["clean_correct"]
        norm = "l2" if run.norm == "linf" and not run.minimal_norm else run.norm
        key = f"{run.label}@{run.norm}=" + ("min" if eps is None else f"{eps:g}")
        out[key] = {"norm": norm, "values": [round(float(v), 6) for v in a[norm][ok]]}
    return out


def _gallery(runs: Sequence[AttackRun], data: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for (label, eps), a in data["runs"].items():
        for example in a.get("examples", []):
            out.append({"attack": label, "eps": eps, **example})
    order = {r.label: i for i, r in enumerate(runs)}
    return sorted(out, key=lambda e: (order.get(e["attack"], 0), e["index"]))


def _tabular(runs: Sequence[AttackRun], data: Mapping[str, Any],
             dataset: Dataset) -> dict[str, Any]:
    names = dataset.feature_names or tuple(f"x{i}" for i in range(dataset.input_shape[0]))
    out = {}
    for (label, eps), a in data["runs"].items():
        if "feature_abs_delta" not in a:
            continue
        ok = int((a["success"] & data["clean_correct"]).sum())
        mean_delta = a["feature_abs_delta"] / max(ok, 1)
        changed = a["feature_changed"] / max(ok, 1)
        top = np.argsort(-mean_delta, kind="stable")[:TOP_FEATURES]
        key = f"{label}@" + ("min" if eps is None else f"{eps:g}")
        out[key] = {"attack": label, "eps": eps, "valid_rate": _rate(a["valid"]),
                    "successes": ok,
                    "top_features": [{"name": names[i], "mean_abs_delta": float(mean_delta[i]),
                                      "changed_rate": float(changed[i])}
                                     for i in top if mean_delta[i] > 0]}
    return out


def dataset_card(dataset: Dataset, split: str, n: int) -> dict[str, Any]:
    domain = dataset.domain
    parts = [f"bounds [{float(domain.lower.min()):g}, {float(domain.upper.max()):g}]"]
    if domain.n_features is not None and domain.is_discrete:
        kinds = {"integer": domain.kind_mask("integer"), "binary": domain.kind_mask("binary")}
        parts += [f"{int(m.sum())} {k}" for k, m in kinds.items() if m is not None and m.any()]
    if domain.one_hot_groups:
        parts.append(f"{len(domain.one_hot_groups)} one-hot groups")
    for name in ("immutable", "increase_only", "decrease_only"):
        mask = getattr(domain, name)
        if mask is not None and mask.any():
            parts.append(f"{int(mask.sum())} {name.replace('_', '-')}")
    return {"name": dataset.name, "split": split, "n": n, "input_shape": list(dataset.input_shape),
            "num_classes": dataset.num_classes, "class_names": list(dataset.class_names),
            "kind": "image" if len(dataset.input_shape) > 1 else "tabular",
            "feature_names": list(dataset.feature_names) if len(dataset.input_shape) == 1
            else None, "domain": ", ".join(parts), "info": dataset.info}

"""Poisoning metrics and the poisoning curve.

* :func:`predict_labels` runs a PyTorch model (logits, batched, eval mode) or a scikit-learn
  classifier (``predict``) on a tensor, so the same metrics score both kinds of learner.
* :func:`backdoor_success`: the attack success rate of a backdoor, the share of triggered test
  inputs of the other classes that the model sends to the target (Gu et al. 2017, Sect. 3).
* :func:`poisoning_curve`: a metric (test accuracy, backdoor success...) against the poisoning
  rate or the number of injected points, over seeds, with the clean baseline at level 0.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.models.wrappers import eval_mode
from advlab.poisoning.base import Poisoned
from advlab.poisoning.triggers import FeatureTrigger, PatchTrigger


@torch.no_grad()
def predict_labels(model: Any, x: Tensor, *, batch_size: int = 1024) -> Tensor:
    """Predicted classes ``(N,)`` int64 of a PyTorch model (arg-max of its logits, in eval mode,
    batched) or of a fitted scikit-learn classifier (``model.predict`` on the flattened rows)."""
    if hasattr(model, "predict") and not isinstance(model, nn.Module):
        flat = x.detach().flatten(1).cpu().double().numpy()
        return torch.as_tensor(np.asarray(model.predict(flat)), dtype=torch.long)
    if not callable(model):
        raise TypeError(f"model must be a torch model or a scikit-learn classifier, got "
                        f"{type(model).__name__}")
    with eval_mode(model):
        out = [model(x[i:i + batch_size]).argmax(1).cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(model: Any, x: Tensor, y: Tensor) -> float:
    """Share of ``x`` that ``model`` classifies as ``y``."""
    return float((predict_labels(model, x) == y.cpu()).double().mean())


def backdoor_success(model: Any, x: Tensor, y: Tensor, trigger: PatchTrigger | FeatureTrigger,
                     target: int) -> float:
    """Attack success rate: the share of triggered inputs whose true class is not ``target``
    that ``model`` classifies as ``target``."""
    keep = y != target
    if not bool(keep.any()):
        raise ValueError(f"backdoor_success: every input is of the target class {target}")
    predicted = predict_labels(model, trigger.apply(x[keep]))
    return float((predicted == target).double().mean())


@dataclass
class PoisoningCurve:
    """Metrics of learners trained on poisoned data, one row per (level, seed).

    ``rows`` hold ``level``, ``seed``, ``n_poisoned`` and every metric; level 0 is the clean
    baseline. ``level_name`` says what the level is (``"rate"`` or ``"points"``).
    """

    level_name: str
    rows: list[dict[str, float]] = field(default_factory=list)

    @property
    def levels(self) -> list[float]:
        return sorted({r["level"] for r in self.rows})

    @property
    def metrics(self) -> list[str]:
        fixed = {"level", "seed", "n_poisoned"}
        return [k for k in (self.rows[0] if self.rows else {}) if k not in fixed]

    def median(self, metric: str) -> list[float]:
        """The median of ``metric`` over seeds at each level, in level order."""
        if metric not in self.metrics:
            raise ValueError(f"unknown metric {metric!r}; known: {self.metrics}")
        return [statistics.median(r[metric] for r in self.rows if r["level"] == lv)
                for lv in self.levels]

    def baseline(self, metric: str) -> float:
        """The clean (level 0) median of ``metric``."""
        if 0 not in self.levels:
            raise ValueError("the curve has no level 0 (clean baseline)")
        return self.median(metric)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"level_name": self.level_name, "rows": self.rows,
                "medians": {m: dict(zip(map(str, self.levels), self.median(m), strict=True))
                            for m in self.metrics}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)


def poisoning_curve(poison: Callable[[float, torch.Generator], Poisoned],
                    train: Callable[[Tensor, Tensor, int], Any],
                    measure: Callable[[Any], Mapping[str, float]],
                    levels: Sequence[float], *, x: Tensor, y: Tensor,
                    seeds: Sequence[int] = (0,), level_name: str = "rate",
                    progress: bool = False) -> PoisoningCurve:
    """Train on poisoned data at every level and seed, and measure.

    Args:
        poison: ``poison(level, generator) -> Poisoned``, e.g.
            ``lambda r, g: random_label_flip(x, y, r, generator=g)``. It is not called at
            level 0: the learner is then trained on the clean ``(x, y)``.
        train: ``train(x, y, seed) -> model`` (a torch model or a fitted scikit-learn one).
        measure: ``measure(model) -> {"test_accuracy": ..., ...}``.
        levels: the poisoning rates or point counts; 0 is added when missing (the baseline).
        x, y: the clean training set.
        seeds: one run per seed; the seed drives both the poisoning (a ``torch.Generator``) and
            the training.
        level_name: ``"rate"`` or ``"points"``, for labels. progress: a tqdm bar over runs.
    """
    if not seeds:
        raise ValueError("poisoning_curve: seeds is empty")
    if any(lv < 0 for lv in levels):
        raise ValueError(f"poisoning_curve: levels must be >= 0, got {list(levels)}")
    grid = sorted(set(levels) | {0})
    curve = PoisoningCurve(level_name)
    runs = [(lv, s) for lv in grid for s in seeds]
    for lv, seed in tqdm(runs, desc="poisoning_curve", disable=not progress, leave=False):
        if lv == 0:
            xs, ys, n = x, y, 0
        else:
            p = poison(lv, torch.Generator().manual_seed(seed))
            xs, ys, n = p.x, p.y, p.n_poisoned
        values = measure(train(xs, ys, seed))
        curve.rows.append({"level": float(lv), "seed": seed, "n_poisoned": n,
                           **{k: float(v) for k, v in values.items()}})
    return curve

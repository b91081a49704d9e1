"""Permutation feature importance in the DALEX style (``model_parts``).

Biecek, "DALEX: Explainers for Complex Predictive Models in R", JMLR 19(84), 2018 (variable
importance after Fisher, Rudin, Dominici, "All Models are Wrong, but Many are Useful", JMLR
2019; Breiman, "Random Forests", Machine Learning 2001): the importance of a feature is the loss
of the model after the feature's values are permuted across the samples, minus the loss before,
averaged over ``B`` permutations. A one-hot group (``service=http``, ``service=ftp``, ...) is
permuted as one feature, rows of the group moving together, so every permuted row stays valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from advlab.explain.attributions import check_batch
from advlab.models.wrappers import eval_mode

LossName = Literal["cross_entropy", "1-auc"]
Model = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Importance:
    """The result of :func:`model_parts`: one entry per feature or group.

    Attributes:
        names: the feature (or group) names, ``(G,)``.
        groups: the flattened column indices of each entry.
        drops: ``(B, G)`` loss after permutation minus loss before, one row per permutation.
        baseline_loss: the loss before any permutation.
        loss: ``"cross_entropy"`` or ``"1-auc"``.
    """

    names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    drops: Tensor
    baseline_loss: float
    loss: str

    @property
    def mean(self) -> Tensor:
        """``(G,)`` mean loss increase over the permutations: the importance."""
        return self.drops.mean(0)

    @property
    def std(self) -> Tensor:
        """``(G,)`` standard deviation over the permutations (0 for a single one): error bars."""
        return self.drops.std(0) if self.drops.shape[0] > 1 else torch.zeros_like(self.mean)

    def ranking(self) -> list[int]:
        """Entry indices by decreasing importance (ties keep the input order)."""
        return torch.sort(-self.mean, stable=True).indices.tolist()

    def top(self, k: int) -> list[str]:
        """Names of the ``k`` most important entries."""
        return [self.names[i] for i in self.ranking()[:k]]

    def columns(self, k: int) -> list[int]:
        """Sorted flattened columns of the ``k`` most important entries (groups expanded)."""
        return sorted(c for i in self.ranking()[:k] for c in self.groups[i])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ranked rows ``{name, importance, std, columns}``, loss and baseline."""
        mean, std = self.mean.tolist(), self.std.tolist()
        return {"loss": self.loss, "baseline_loss": self.baseline_loss,
                "permutations": int(self.drops.shape[0]),
                "ranking": [{"name": self.names[i], "importance": mean[i], "std": std[i],
                             "columns": list(self.groups[i])} for i in self.ranking()]}


def feature_groups(feature_names: Sequence[str],
                   one_hot_groups: Sequence[Sequence[int]] = ()
                   ) -> tuple[list[list[int]], list[str]]:
    """Players for :func:`model_parts` and :func:`~advlab.explain.shapley_sampling`: each one-hot
    group as one (named by the part of its first column's name before ``=``, e.g. ``service``),
    every other column on its own, in column order of first appearance."""
    owner = {c: gi for gi, g in enumerate(one_hot_groups) for c in g}
    groups: list[list[int]] = []
    names: list[str] = []
    seen: set[int] = set()
    for c, name in enumerate(feature_names):
        if c not in owner:
            groups.append([c])
            names.append(str(name))
        elif owner[c] not in seen:
            seen.add(owner[c])
            cols = [int(i) for i in one_hot_groups[owner[c]]]
            groups.append(cols)
            names.append(str(feature_names[cols[0]]).split("=")[0])
    return groups, names


def model_parts(model: Model, x: Tensor, y: Tensor, *, loss: LossName = "cross_entropy",
                groups: Sequence[Sequence[int]] | None = None,
                names: Sequence[str] | None = None, permutations: int = 10,
                batch_size: int = 16384,
                generator: torch.Generator | None = None) -> Importance:
    """DALEX's ``model_parts``: permutation importance of every feature or group (Biecek, JMLR
    2018; see the module docstring).

    For each entry ``g``, ``permutations`` random permutations of the rows of ``x`` are drawn;
    columns ``g`` of every row are replaced by those of the permuted row (the other columns stay),
    and the loss of the model on the result minus the loss on ``x`` is recorded. All the
    permutations of one entry run as one batched forward (chunked by ``batch_size`` rows).

    Args:
        model: returns logits ``(N, K)``; run in eval mode, no gradients.
        x, y: inputs ``(N, *D)`` and int64 labels ``(N,)``.
        loss: ``"cross_entropy"`` (mean) or ``"1-auc"`` (DALEX's default for classifiers:
            ``1 - ROC-AUC`` of ``f_1 - f_0`` for two classes, macro one-vs-rest of the
            softmax otherwise).
        groups: column groups of the flattened input (default: every column alone; use
            :func:`feature_groups` for one-hot groups). names: one per group (default
            ``"x<i>"`` or the joined columns).
        permutations: ``B``, the number of permutations per entry (``B >= 1``).
        generator: the permutations' randomness.

    Returns:
        An :class:`Importance`; ``drops`` is ``(B, G)``.
    """
    x = check_batch("model_parts", x)
    if not isinstance(y, Tensor) or y.dtype != torch.long or y.shape != (x.shape[0],):
        raise ValueError(f"model_parts: y must be int64 of shape ({x.shape[0]},), got "
                         f"{getattr(y, 'dtype', type(y).__name__)} "
                         f"{tuple(getattr(y, 'shape', ()))}")
    if loss not in ("cross_entropy", "1-auc"):
        raise ValueError(f"model_parts: loss must be 'cross_entropy' or '1-auc', got {loss!r}")
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ValueError(f"model_parts: permutations must be an int >= 1, got {permutations!r}")
    if x.shape[0] < 2:
        raise ValueError("model_parts: permuting rows needs at least 2 samples")
    flat = x.flatten(1)
    d = flat.shape[1]
    groups = [[c] for c in range(d)] if groups is None else [[int(c) for c in g] for g in groups]
    for gi, g in enumerate(groups):
        if not g or min(g) < 0 or max(g) >= d:
            raise ValueError(f"model_parts: group {gi} must hold column indices in [0, {d}), got "
                             f"{g}")
    if names is None:
        names = [f"x{g[0]}" if len(g) == 1 else "+".join(f"x{c}" for c in g) for g in groups]
    if len(names) != len(groups):
        raise ValueError(f"model_parts: {len(names)} names for {len(groups)} groups")
    y_np = y.cpu().numpy()
    with torch.no_grad(), eval_mode(model):
        base = _loss(model(x).unsqueeze(0), y, y_np, loss)[0]
        drops = torch.empty(permutations, len(groups), dtype=torch.float64)
        for gi, g in enumerate(groups):
            order = torch.rand(permutations, x.shape[0], generator=generator).argsort(1)
            cols = torch.as_tensor(g, device=x.device)
            permuted = flat.unsqueeze(0).repeat(permutations, 1, 1)
            permuted[:, :, cols] = flat[order.to(x.device)][:, :, cols]
            logits = _forward(model, permuted.reshape(-1, *x.shape[1:]), batch_size)
            drops[:, gi] = _loss(logits.reshape(permutations, x.shape[0], -1), y, y_np, loss) \
                - base
    return Importance(tuple(str(n) for n in names), tuple(tuple(g) for g in groups), drops,
                      float(base), loss)


def _forward(model: Model, x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([model(x[s:s + batch_size]) for s in range(0, x.shape[0], batch_size)])


def _loss(logits: Tensor, y: Tensor, y_np: np.ndarray, loss: str) -> Tensor:
    """``(B,)`` float64 losses of ``B`` stacked logit sets ``(B, N, K)``."""
    b, n, k = logits.shape
    if loss == "cross_entropy":
        ce = F.cross_entropy(logits.reshape(b * n, k).double(), y.repeat(b), reduction="none")
        return ce.reshape(b, n).mean(1).cpu()
    if k == 2:
        scores = (logits[..., 1] - logits[..., 0]).double().cpu().numpy()
        return torch.from_numpy(1.0 - _auc(scores, y_np == 1))
    probs = logits.double().softmax(-1).cpu().numpy()
    present = [c for c in range(k) if 0 < (y_np == c).sum() < n]
    if not present:
        raise ValueError("model_parts: 1-auc needs at least two classes among the labels")
    aucs = np.stack([_auc(probs[..., c], y_np == c) for c in present])
    return torch.from_numpy(1.0 - aucs.mean(0))


def _auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Rank-based ROC-AUC (Mann-Whitney U) of each row of ``scores`` ``(B, N)``; ties count 1/2."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("model_parts: 1-auc needs both classes among the labels")
    ranks = rankdata(scores, axis=1)
    return (ranks[:, positive].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)

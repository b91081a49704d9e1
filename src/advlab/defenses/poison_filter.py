"""What the training-set filters against poisoning share: the result and the representations.

A filter (:mod:`advlab.defenses.activation_clustering`, :mod:`advlab.defenses.spectral`) is
given ``model``, a network trained on the suspect training set ``(x, y)`` (``(N, *D)`` inputs
and their int64 labels), and reads the *representation* that network gives each training row:
by default the input of its last ``nn.Linear`` (the penultimate layer, where a backdoor's rows
separate from the clean rows of their label), or the output of ``layer``; rows go through the
network ``batch_size`` at a time, in eval mode (:func:`representations`). Each label is then
analysed on its own, because a backdoor relabels all its rows to one target label. The filter
flags rows as poisoned and returns a :class:`PoisonFilter`: retrain on ``x[kept]``, ``y[kept]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from advlab.defenses.detection import representation
from advlab.models.wrappers import eval_mode


@dataclass(frozen=True)
class PoisonFilter:
    """Rows flagged as poisoned.

    Attributes:
        removed: sorted int64 indices of the rows flagged as poisoned.
        kept: sorted int64 indices of the rest (train on ``x[kept]``, ``y[kept]``).
        scores: ``(N,)`` per-row outlier score, higher is more suspect (comparable within a
            label only).
        info: what the filter measured per label (JSON-serialisable), e.g. cluster sizes.
    """

    removed: Tensor
    kept: Tensor
    scores: Tensor
    info: dict[str, Any] = field(default_factory=dict)

    def metrics(self, poisoned: Tensor) -> dict[str, float]:
        """Precision and recall of the removal against the true poisoned ``indices``."""
        n = self.scores.numel()
        truth = torch.zeros(n, dtype=torch.bool)
        truth[poisoned.cpu()] = True
        flagged = torch.zeros(n, dtype=torch.bool)
        flagged[self.removed.cpu()] = True
        hits = int((truth & flagged).sum())
        return {"precision": hits / max(int(flagged.sum()), 1),
                "recall": hits / max(int(truth.sum()), 1),
                "removed": float(flagged.sum()), "poisoned": float(truth.sum())}


def from_mask(flagged: Tensor, scores: Tensor, info: dict[str, Any] | None = None) -> PoisonFilter:
    return PoisonFilter(flagged.nonzero()[:, 0], (~flagged).nonzero()[:, 0], scores,
                        dict(info or {}))


@torch.no_grad()
def representations(name: str, model: nn.Module, x: Tensor, y: Tensor, layer: nn.Module | None,
                    batch_size: int) -> Tensor:
    """``(N, F)`` float64 representations on the CPU (penultimate layer unless ``layer``)."""
    if not isinstance(y, Tensor) or y.shape != (x.shape[0],):
        raise ValueError(f"{name}: y has shape {tuple(getattr(y, 'shape', ()))}, x has "
                         f"{x.shape[0]} rows")
    if batch_size < 1:
        raise ValueError(f"{name}: batch_size must be >= 1, got {batch_size}")
    with eval_mode(model):
        return torch.cat([representation(model, x[i:i + batch_size], layer).cpu()
                          for i in range(0, x.shape[0], batch_size)]).double()

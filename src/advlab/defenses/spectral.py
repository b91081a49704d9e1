"""Spectral signatures: find and remove backdoor training points before training again.

Tran, Li and Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS 2018 (arXiv:1811.00636),
Algorithm 1. Train on the (possibly poisoned) data; for each label, take the learned
representations ``R`` of the rows with that label, centre them, and score every row by its
squared projection on the top right singular vector of the centred matrix. Poisoned rows, which
share a feature the clean rows lack, stand out along that direction. Remove the
``removal_factor * expected_rate * n_label`` highest-scoring rows of each label (the paper's
1.5 ε), then retrain on the rest. The inputs and representations every filter shares are
described in :mod:`advlab.defenses.poison_filter`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from advlab.defenses.poison_filter import PoisonFilter, from_mask, representations


def spectral_signatures(model: nn.Module, x: Tensor, y: Tensor, *, expected_rate: float,
                        removal_factor: float = 1.5, layer: nn.Module | None = None,
                        batch_size: int = 512) -> PoisonFilter:
    """Score every training row and flag the outliers of each label (Tran et al. 2018, Alg. 1).

    Args:
        model, x, y, layer, batch_size: the suspect training set, the network trained on it and
            where its representation is read (:mod:`advlab.defenses.poison_filter`).
        expected_rate: ε, an upper bound on the poisoned fraction *of a label* (the paper's ε:
            a backdoor relabels all its rows to one target, so the share within that label is
            the one to bound), in (0, 1).
        removal_factor: remove ``removal_factor * ε * n_label`` rows per label (1.5 in the
            paper).

    Returns:
        :class:`PoisonFilter`; ``scores`` are the squared projections (the outlier scores).
    """
    if not 0 < expected_rate < 1:
        raise ValueError(f"spectral_signatures: expected_rate must lie in (0, 1), got "
                         f"{expected_rate!r}")
    if removal_factor <= 0:
        raise ValueError(f"spectral_signatures: removal_factor must be > 0, got {removal_factor}")
    reps = representations("spectral_signatures", model, x, y, layer, batch_size)
    labels = y.cpu()
    scores = torch.zeros(x.shape[0], dtype=torch.float64)
    flagged = torch.zeros(x.shape[0], dtype=torch.bool)
    for c in labels.unique().tolist():  # a handful of labels, each one batched
        rows = (labels == c).nonzero()[:, 0]
        centred = reps[rows] - reps[rows].mean(0)
        top = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        s = (centred @ top) ** 2
        scores[rows] = s
        k = min(rows.numel(), int(round(removal_factor * expected_rate * rows.numel())))
        flagged[rows[s.topk(k).indices]] = True
    return from_mask(flagged, scores)

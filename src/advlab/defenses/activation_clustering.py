"""Activation clustering: find backdoor training points by clustering each label's activations.

Chen, Carvalho, Baracaldo, Ludwig, Edwards, Lee, Molloy and Srivastava, "Detecting Backdoor
Attacks on Deep Neural Networks by Activation Clustering", SafeAI@AAAI 2019
(arXiv:1811.03728), Sect. 3-4. For each label, the penultimate activations of the training rows
with that label are reduced to ``components`` dimensions and split in two by k-means. A
backdoored label holds two populations (its own clean rows, and rows of other classes that the
trigger sends there), and the poisoned one forms the smaller cluster; a clean label splits into
two clusters of similar size. The smaller cluster is flagged when its relative size is at most
``max_size`` (the paper's relative-size analysis, Sect. 4.3).

The paper reduces with ICA; ``reduction="pca"`` (the default here) separated the BadNets rows of
the MNIST small_cnn better in our measurements (docs/poisoning.md), ``"ica"`` is available.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from advlab.defenses.poison_filter import PoisonFilter, from_mask, representations


def activation_clustering(model: nn.Module, x: Tensor, y: Tensor, *, components: int = 10,
                          reduction: Literal["pca", "ica"] = "pca", max_size: float = 0.35,
                          layer: nn.Module | None = None, batch_size: int = 512,
                          seed: int = 0) -> PoisonFilter:
    """Flag the rows of each label's smaller activation cluster when it is small enough.

    Args:
        model: the network trained on ``(x, y)``; its representation is the input of its last
            ``nn.Linear`` (the penultimate layer), or the output of ``layer``.
        x, y: the training set it was trained on.
        components: dimensions kept by the reduction (10 in the paper).
        reduction: ``"pca"`` or ``"ica"`` (the paper's choice).
        max_size: flag the smaller cluster when it holds at most this share of its label.
        batch_size: rows per forward pass. seed: k-means and ICA initialisation.

    Returns:
        :class:`~advlab.defenses.poison_filter.PoisonFilter`; ``scores`` is 1 for the rows of a
        label's smaller cluster (flagged or not) and 0 otherwise.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA, FastICA

    name = "activation_clustering"
    if reduction not in ("pca", "ica"):
        raise ValueError(f"{name}: reduction must be 'pca' or 'ica', got {reduction!r}")
    if not 0 < max_size < 0.5 + 1e-12:
        raise ValueError(f"{name}: max_size must lie in (0, 0.5], got {max_size!r}")
    if components < 1:
        raise ValueError(f"{name}: components must be >= 1, got {components}")
    reps = representations(name, model, x, y, layer, batch_size).numpy()
    labels = y.cpu().numpy()
    smaller = np.zeros(labels.size, dtype=bool)
    flagged = np.zeros(labels.size, dtype=bool)
    for c in np.unique(labels):  # a handful of labels, each one batched
        rows = np.flatnonzero(labels == c)
        k = min(components, rows.size - 1, reps.shape[1])
        if k < 1:
            continue
        centred = reps[rows] - reps[rows].mean(0)
        reducer = PCA(k, random_state=seed) if reduction == "pca" else \
            FastICA(k, random_state=seed, max_iter=1000)
        z = reducer.fit_transform(centred)
        cluster = KMeans(2, n_init=10, random_state=seed).fit_predict(z)
        small = int(np.bincount(cluster, minlength=2).argmin())
        members = rows[cluster == small]
        smaller[members] = True
        if members.size / rows.size <= max_size:
            flagged[members] = True
    return from_mask(torch.from_numpy(flagged), torch.from_numpy(smaller).double())

"""Activation clustering: find backdoor training points by clustering each label's activations.

Chen, Carvalho, Baracaldo, Ludwig, Edwards, Lee, Molloy and Srivastava, "Detecting Backdoor
Attacks on Deep Neural Networks by Activation Clustering", SafeAI@AAAI 2019
(arXiv:1811.03728). For each label, the representations of its training rows are reduced to
``components`` dimensions and split in two by k-means (Sect. 4). A backdoored label holds two
populations, its own clean rows and the rows of other classes that the trigger sends there, and
the poisoned ones form the smaller cluster; a clean label has no second population, so its
2-means split is arbitrary. Which smaller clusters are poison is decided by one of the paper's
cluster analyses (Sect. 4.3), ``analysis=``:

* ``"relative-size"``: the smaller cluster holds at most ``max_size`` of its label.
* ``"silhouette"``: that, and the split fits the label's reduced activations, i.e. its
  silhouette score (Rousseeuw 1987; mean of ``(b - a) / max(a, b)`` over the rows) is at least
  ``min_silhouette``. An arbitrary split of one population scores low.
* ``"exclusionary"``: exclusionary reclassification. A model is retrained without the
  relative-size candidates (``train_fn``) and classifies them: of a cluster's rows, ``l`` are
  given their own label and ``p`` the most frequent other class ``C``. Poisoned rows come from
  other classes and go back to them: the cluster is poison when ``l < reclassify_ratio · p``
  (the paper's ``l/p`` against a threshold ``T``), and ``C`` is its source class.

The paper reduces with ICA; ``reduction="pca"`` (the default here) separated the BadNets rows of
the MNIST small_cnn better in our measurements (docs/poisoning.md), ``"ica"`` is available. The
inputs and representations every filter shares: :mod:`advlab.defenses.poison_filter`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from advlab.defenses.poison_filter import PoisonFilter, from_mask, representations
from advlab.models.wrappers import eval_mode

Analysis = Literal["relative-size", "silhouette", "exclusionary"]
TrainFn = Callable[[Tensor, Tensor], nn.Module]


def activation_clustering(model: nn.Module, x: Tensor, y: Tensor, *, components: int = 10,
                          reduction: Literal["pca", "ica"] = "pca",
                          analysis: Analysis = "relative-size", max_size: float = 0.35,
                          min_silhouette: float = 0.10, train_fn: TrainFn | None = None,
                          reclassify_ratio: float = 1.0, joint: bool = False,
                          layer: nn.Module | None = None, batch_size: int = 512,
                          seed: int = 0) -> PoisonFilter:
    """Flag the rows of each label's smaller activation cluster that ``analysis`` finds poisoned.

    Args:
        model, x, y, layer, batch_size: the suspect training set, the network trained on it and
            where its representation is read (:mod:`advlab.defenses.poison_filter`).
        components: dimensions kept by the reduction (10 in the paper).
        reduction: ``"pca"`` or ``"ica"`` (the paper's choice).
        analysis: the cluster analysis (module docstring).
        max_size: largest share of its label a flagged (or, for ``"exclusionary"``, a tested)
            cluster may hold, in (0, 0.5].
        min_silhouette: the silhouette threshold of ``"silhouette"``.
        train_fn: ``(x, y) -> model`` trained from scratch, for ``"exclusionary"``.
        reclassify_ratio: ``T`` of ``"exclusionary"``. joint: retrain once without every
            candidate instead of once per candidate (the paper), ``len(candidates)`` times
            cheaper.
        seed: k-means and ICA initialisation.

    Returns:
        :class:`PoisonFilter`; ``scores`` is 1 for the rows of a label's smaller cluster (flagged
        or not), 0 otherwise; ``info["labels"]`` has, per label, the cluster sizes, the
        silhouette score and (``"exclusionary"``) ``l``, ``p`` and the source class.
    """
    name = "activation_clustering"
    if reduction not in ("pca", "ica"):
        raise ValueError(f"{name}: reduction must be 'pca' or 'ica', got {reduction!r}")
    if analysis not in ("relative-size", "silhouette", "exclusionary"):
        raise ValueError(f"{name}: analysis must be 'relative-size', 'silhouette' or "
                         f"'exclusionary', got {analysis!r}")
    if analysis == "exclusionary" and train_fn is None:
        raise ValueError(f"{name}: analysis='exclusionary' needs train_fn=(x, y) -> model")
    if not 0 < max_size < 0.5 + 1e-12:
        raise ValueError(f"{name}: max_size must lie in (0, 0.5], got {max_size!r}")
    if components < 1 or reclassify_ratio <= 0:
        raise ValueError(f"{name}: need components >= 1 and reclassify_ratio > 0, got "
                         f"{components}, {reclassify_ratio}")
    reps = representations(name, model, x, y, layer, batch_size).numpy()
    labels = y.cpu().numpy()
    smaller = np.zeros(labels.size, dtype=bool)
    flagged = np.zeros(labels.size, dtype=bool)
    per_label: list[dict[str, Any]] = []
    candidates: list[tuple[dict[str, Any], np.ndarray]] = []
    for c in np.unique(labels):  # a handful of labels, each one batched
        rows = np.flatnonzero(labels == c)
        members, stats = smaller_cluster(reps[rows], components, reduction, seed)
        record = {"label": int(c), "n": int(rows.size), **stats}
        per_label.append(record)
        smaller[rows[members]] = True
        small_enough = record["relative_size"] <= max_size
        if analysis == "relative-size":
            record["flagged"] = small_enough
        elif analysis == "silhouette":
            record["flagged"] = small_enough and record["silhouette"] >= min_silhouette
        else:
            record["flagged"] = False
            if small_enough:
                candidates.append((record, rows[members]))
        if record["flagged"]:
            flagged[rows[members]] = True
    if candidates:
        assert train_fn is not None
        found = exclusionary_reclassification(x, y, [m for _, m in candidates], train_fn,
                                              joint=joint)
        for (record, members), result in zip(candidates, found, strict=True):
            record.update(result)
            record["flagged"] = result["l"] < reclassify_ratio * result["p"]
            if record["flagged"]:
                flagged[members] = True
    info = {"analysis": analysis, "reduction": reduction, "components": components,
            "max_size": max_size, "labels": per_label}
    return from_mask(torch.from_numpy(flagged), torch.from_numpy(smaller).double(), info)


def smaller_cluster(reps: np.ndarray, components: int, reduction: Literal["pca", "ica"],
                    seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """Reduce one label's ``(n, F)`` representations and split them by 2-means: the positions
    of the smaller cluster's rows, and ``{"relative_size", "silhouette"}`` of the split."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA, FastICA
    from sklearn.metrics import silhouette_score

    k = min(components, reps.shape[0] - 1, reps.shape[1])
    if k < 1 or reps.shape[0] < 3:
        return np.zeros(0, dtype=np.int64), {"relative_size": 1.0, "silhouette": 0.0}
    centred = reps - reps.mean(0)
    reducer = PCA(k, random_state=seed) if reduction == "pca" else \
        FastICA(k, random_state=seed, max_iter=1000)
    z = reducer.fit_transform(centred)
    cluster = KMeans(2, n_init=10, random_state=seed).fit_predict(z)
    sizes = np.bincount(cluster, minlength=2)
    if sizes.min() == 0:
        return np.zeros(0, dtype=np.int64), {"relative_size": 0.0, "silhouette": 0.0}
    small = int(sizes.argmin())
    return np.flatnonzero(cluster == small), {
        "relative_size": float(sizes[small] / sizes.sum()),
        "silhouette": float(silhouette_score(z, cluster))}


def exclusionary_reclassification(x: Tensor, y: Tensor, clusters: list[np.ndarray],
                                  train_fn: TrainFn, *, joint: bool = False,
                                  batch_size: int = 1024) -> list[dict[str, int]]:
    """Chen et al. (2018), Sect. 4.3: retrain without each cluster of row indices (or, with
    ``joint``, once without all of them), classify the cluster's rows with the new model.

    Returns, per cluster, ``{"l": rows given their own label, "p": rows given the most frequent
    other class, "source": that class (-1 if none)}``.
    """
    out = []
    models: list[nn.Module] = []
    if joint:
        keep = torch.ones(y.shape[0], dtype=torch.bool)
        for rows in clusters:
            keep[torch.from_numpy(rows)] = False
        models = [train_fn(x[keep], y[keep])] * len(clusters)
    for i, rows in enumerate(clusters):
        idx = torch.from_numpy(rows)
        if not joint:
            keep = torch.ones(y.shape[0], dtype=torch.bool)
            keep[idx] = False
            models.append(train_fn(x[keep], y[keep]))
        pred = _predict(models[i], x[idx], batch_size)
        own = y[idx].cpu()
        l_count = int((pred == own).sum())
        other = pred[pred != own]
        counts = torch.bincount(other) if other.numel() else torch.zeros(1, dtype=torch.long)
        out.append({"l": l_count, "p": int(counts.max()),
                    "source": int(counts.argmax()) if other.numel() else -1})
    return out


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    with eval_mode(model):
        return torch.cat([model(x[s:s + batch_size]).argmax(1).cpu()
                          for s in range(0, x.shape[0], batch_size)])

"""Activation clustering's cluster analyses (Chen et al. 2018, Sect. 4.3) on synthetic
representations with a known answer: relative size, silhouette, exclusionary reclassification.

The model is an ``nn.Linear`` head, so each row's representation (the input of the last linear
layer) is the row itself. Three labels in 8-D, class means 6 apart:

* label 0: 300 clean rows plus 30 poisoned rows drawn from class 2 and shifted by a "trigger";
* label 1: 240 rows plus a genuine clean sub-population of 60 rows (a writing style, say);
* label 2: 300 rows, one Gaussian.

Relative size flags the poison and the clean sub-population alike (both hold 9-20 % of their
label); exclusionary reclassification keeps only the poison, whose rows a model trained without
them sends back to class 2; silhouette separates a real two-population split from a skewed
single population.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from advlab.defenses import activation_clustering
from advlab.defenses.activation_clustering import exclusionary_reclassification, smaller_cluster

MEANS = torch.zeros(3, 8)
MEANS[1, 1], MEANS[2, 2] = 6.0, 6.0


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def synthetic() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = gen()
    trigger = torch.zeros(8)
    trigger[3] = 3.0
    clean0 = MEANS[0] + torch.randn(300, 8, generator=g)
    clean1 = MEANS[1] + torch.randn(240, 8, generator=g)
    style1 = MEANS[1] + torch.randn(60, 8, generator=g) + 6.0 * torch.eye(8)[4]
    clean2 = MEANS[2] + torch.randn(300, 8, generator=g)
    poison = MEANS[2] + trigger + torch.randn(30, 8, generator=g)
    x = torch.cat([clean0, clean1, style1, clean2, poison])
    y = torch.cat([torch.zeros(300), torch.ones(300), torch.full((300,), 2.0),
                   torch.zeros(30)]).long()
    return x, y, torch.arange(900, 930), torch.arange(540, 600)


class NearestMean(nn.Module):
    """A deterministic 'training': logits = -||x - mean_c||² over the class means of (x, y)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("means", torch.stack([x[y == c].mean(0) for c in range(3)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(x, self.means) ** 2


def test_relative_size_flags_the_poison_and_the_clean_sub_population() -> None:
    x, y, poison, style = synthetic()
    f = activation_clustering(nn.Linear(8, 3), x, y, components=8)
    removed = set(f.removed.tolist())
    assert set(poison.tolist()) <= removed and set(style.tolist()) <= removed
    m = f.metrics(poison)
    assert m["recall"] == 1.0 and m["precision"] == pytest.approx(30 / 90)
    sizes = {r["label"]: r["relative_size"] for r in f.info["labels"]}
    assert sizes[0] == pytest.approx(30 / 330) and sizes[1] == pytest.approx(0.2)
    assert sizes[2] > 0.35  # one Gaussian: a balanced, arbitrary split, never flagged


@pytest.mark.parametrize("joint", [False, True])
def test_exclusionary_reclassification_keeps_only_the_poison(joint: bool) -> None:
    x, y, poison, _ = synthetic()
    calls: list[int] = []

    def train(xs: torch.Tensor, ys: torch.Tensor) -> nn.Module:
        calls.append(xs.shape[0])
        return NearestMean(xs, ys)

    f = activation_clustering(nn.Linear(8, 3), x, y, components=8, analysis="exclusionary",
                              train_fn=train, joint=joint)
    m = f.metrics(poison)
    assert m["recall"] == 1.0 and m["precision"] == 1.0
    by_label = {r["label"]: r for r in f.info["labels"]}
    assert by_label[0]["flagged"] and by_label[0]["source"] == 2  # the poison's true class
    assert by_label[0]["l"] == 0 and by_label[0]["p"] == 30
    assert not by_label[1]["flagged"] and by_label[1]["l"] == 60 and by_label[1]["p"] == 0
    # one retraining per candidate cluster (labels 0 and 1), or one for both
    assert calls == ([930 - 90] if joint else [900, 870])


def test_exclusionary_reclassification_counts() -> None:
    x, y, poison, style = synthetic()
    found = exclusionary_reclassification(x, y, [poison.numpy(), style.numpy()], NearestMean)
    assert found == [{"l": 0, "p": 30, "source": 2}, {"l": 60, "p": 0, "source": -1}]


def test_silhouette_separates_two_populations_from_a_skewed_one() -> None:
    rng = np.random.default_rng(0)
    two = np.r_[rng.normal(size=(240, 8)), rng.normal(size=(60, 8)) + 6]
    skewed = np.c_[rng.lognormal(0, 1, 300) * 2, rng.normal(size=(300, 7))]
    members, two_stats = smaller_cluster(two, 8, "pca", 0)
    assert sorted(members.tolist()) == list(range(240, 300))
    _, skew_stats = smaller_cluster(skewed, 8, "pca", 0)
    # both splits are lopsided, so relative size alone flags both ...
    assert two_stats["relative_size"] == pytest.approx(0.2) and skew_stats["relative_size"] < 0.35
    # ... but only the real two-population split fits the data well
    assert two_stats["silhouette"] > 0.7 and skew_stats["silhouette"] < 0.55
    x = torch.from_numpy(np.r_[two, skewed]).float()
    y = torch.cat([torch.zeros(300), torch.ones(300)]).long()
    sil = activation_clustering(nn.Linear(8, 2), x, y, components=8, analysis="silhouette",
                                min_silhouette=0.6)
    assert sil.metrics(torch.arange(240, 300)) == {"precision": 1.0, "recall": 1.0,
                                                    "removed": 60.0, "poisoned": 60.0}
    size = activation_clustering(nn.Linear(8, 2), x, y, components=8)
    assert size.metrics(torch.arange(240, 300))["precision"] < 1.0


def test_activation_clustering_checks_its_arguments() -> None:
    x, y, _, _ = synthetic()
    with pytest.raises(ValueError, match="needs train_fn"):
        activation_clustering(nn.Linear(8, 3), x, y, analysis="exclusionary")
    with pytest.raises(ValueError, match="analysis must be"):
        activation_clustering(nn.Linear(8, 3), x, y, analysis="distance")  # type: ignore[arg-type]

"""Tree ensembles for the tests: a hand-built one with a known answer, and small trained ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advlab.data.base import Dataset
from advlab.domain import Domain
from advlab.trees.ensemble import LEAF, TreeEnsemble, concatenate


def stump(feature: int, threshold: float, left: float, right: float) -> dict[str, np.ndarray]:
    """A depth-1 tree adding ``left`` or ``right`` to the binary margin (class-1 logit minus
    class-0 logit is the sum of the stumps)."""
    value = np.zeros((3, 2))
    value[1], value[2] = [-left / 2, left / 2], [-right / 2, right / 2]
    return {"feature": np.array([feature, LEAF, LEAF]), "threshold": np.array([threshold, 0, 0]),
            "left": np.array([1, LEAF, LEAF]), "right": np.array([2, LEAF, LEAF]),
            "value": value}


def toy_ensemble() -> TreeEnsemble:
    """margin(x) = [x0 < .5 ? -1 : 1] + [x1 < .6 ? -1 : 1] + [x0 < .7 ? -.5 : 1.5].

    At x = (0.2, 0.2) the margin is -2.5 (class 0). Class 1 needs x0 >= 0.7 (margin 1.5), or
    x0 >= 0.5 and x1 >= 0.6 (margin 1.5); x1 >= 0.6 alone leaves -0.5 and x0 in [0.5, 0.7)
    alone -0.5. So the minimal L∞ evasion is 0.4 (x = (0.5, 0.6)) and the minimal L1 evasion
    is 0.5 (x = (0.7, 0.2)).
    """
    trees = [stump(0, 0.5, -1, 1), stump(1, 0.6, -1, 1), stump(0, 0.7, -0.5, 1.5)]
    return concatenate(trees, bias=np.zeros(2), link="identity", n_features=2, library="toy")


def blobs(n: int = 600, d: int = 2, classes: int = 2, seed: int = 0) -> Dataset:
    """A tabular data set in the box [0, 1]^d: class = which of ``classes`` rings x falls in."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    r = ((x[:, :2] - 0.5) ** 2).sum(1) + 0.2 * x[:, 2:].sum(1)
    y = torch.bucketize(r, torch.linspace(0, 0.3, classes + 1)[1:-1]).long()
    split = 2 * n // 3
    return Dataset("blobs", x[:split], y[:split], x[split:], y[split:],
                   Domain(0.0, 1.0, n_features=d), tuple(f"x{i}" for i in range(d)),
                   tuple(f"c{k}" for k in range(classes)))


def needs(*modules: str) -> None:
    for m in modules:
        pytest.importorskip(m, reason=f"{m} is not installed (pip install 'advlab[trees]')")

"""Robustness verification of tree ensembles: Chen, Zhang, Si, Li, Boning, Hsieh, "Robustness
Verification of Tree-based Models", NeurIPS 2019 (arXiv:1906.03849), §3.2–3.3.

In an L∞ ball every tree can only reach the leaves whose path box meets the ball; the ensemble's
worst case is a choice of one reachable leaf per tree whose boxes share a point (a clique of the
K-partite graph of leaves, §3.2). Chen et al. bound it from below by merging the trees in
groups, enumerating the compatible leaf tuples of each group exactly and adding up the groups'
worst cases (the multi-level algorithm of §3.3, here with one level of groups of ``group`` trees;
``group = 1`` is the naive per-tree bound). The margin ``s_y - s_j`` of every other class ``j``
is bounded this way; a sample is certified when every bound is positive. The bound is sound for
advlab's discrete Domains too: it verifies the continuous box, which contains every valid point
(bounds, immutable and monotone features are folded into the box; grids and one-hot groups
are relaxed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from advlab.domain import Domain
from advlab.threat import ThreatModel
from advlab.trees.ensemble import TreeEnsemble
from advlab.trees.program import ensemble_of

_MAX_BOX_CELLS = 50_000_000  # leaves x used features of the dense leaf boxes


class LeafBoxes:
    """Every leaf's path box ``low <= x < up`` over the features the splits use."""

    def __init__(self, ensemble: TreeEnsemble) -> None:
        self.used = np.array(sorted(ensemble.thresholds()), dtype=np.int64)
        col = {int(f): k for k, f in enumerate(self.used)}
        owner = ensemble.tree_of()
        self.leaves = np.flatnonzero(ensemble.is_leaf)
        self.tree = owner[self.leaves]
        if len(self.leaves) * max(1, len(self.used)) > _MAX_BOX_CELLS:
            raise ValueError(f"verify: {len(self.leaves)} leaves x {len(self.used)} features is "
                             "too large for the dense leaf boxes; verify a smaller ensemble")
        index = {int(leaf): k for k, leaf in enumerate(self.leaves)}
        self.low = np.full((len(self.leaves), len(self.used)), -np.inf, dtype=np.float32)
        self.up = np.full((len(self.leaves), len(self.used)), np.inf, dtype=np.float32)
        e = ensemble
        for root in e.roots:
            stack = [(int(root), {})]
            while stack:
                node, bounds = stack.pop()
                if e.feature[node] < 0:
                    k = index[node]
                    for c, (lo, hi) in bounds.items():
                        self.low[k, c], self.up[k, c] = lo, hi
                    continue
                c, t = col[int(e.feature[node])], e.threshold[node]
                lo, hi = bounds.get(c, (-np.inf, np.inf))
                stack.append((int(e.left[node]), {**bounds, c: (lo, min(hi, t))}))
                stack.append((int(e.right[node]), {**bounds, c: (max(lo, t), hi)}))

    def reachable(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """bool ``(N, leaves)``: the leaf's box meets the sample's box ``[lo, hi]`` (used
        features only, ``(N, used)``)."""
        out = np.empty((lo.shape[0], len(self.leaves)), dtype=bool)
        step = max(1, 2_000_000 // max(1, self.low.size))
        for s in range(0, lo.shape[0], step):
            a, b = lo[s:s + step, None, :], hi[s:s + step, None, :]
            out[s:s + step] = ((np.maximum(a, self.low) < self.up) &
                               (self.low <= b)).all(-1)
        return out


def margin_bounds(model: object, x: Tensor, y: Tensor, domain: Domain, radius: Tensor, *,
                  group: int = 2) -> Tensor:
    """Lower bounds ``(N, C)`` on ``s_y - s_j`` over the L∞ ball of ``radius`` ``(N,)`` ∩ the
    domain's box around each sample (``+inf`` at ``j = y``). Chen et al. 2019, §3.3."""
    ensemble = ensemble_of(model)
    if group < 1:
        raise ValueError(f"verify: group must be >= 1, got {group}")
    boxes = LeafBoxes(ensemble)
    lo_d, hi_d = domain.delta_bounds(x.detach())
    r = radius.to(x).view(-1, 1).double()
    x64 = x.detach().double()
    lo = torch.maximum(x64 + lo_d.double(), x64 - r)[:, boxes.used].cpu().numpy()
    hi = torch.minimum(x64 + hi_d.double(), x64 + r)[:, boxes.used].cpu().numpy()
    reach = boxes.reachable(lo, hi)
    value = ensemble.value[boxes.leaves]  # (leaves, C)
    labels = y.cpu().numpy()
    n, c = x.shape[0], ensemble.n_classes
    out = np.full((n, c), np.inf)
    groups = [list(range(s, min(s + group, ensemble.n_trees)))
              for s in range(0, ensemble.n_trees, group)]
    for i in range(n):
        gain = value[:, labels[i]][:, None] - value  # (leaves, C): s_y - s_j contributions
        total = ensemble.bias[labels[i]] - ensemble.bias
        for trees in groups:
            total = total + _group_min(boxes, reach[i], trees, gain, lo[i], hi[i])
        total[labels[i]] = np.inf
        out[i] = total
    return torch.from_numpy(out)


def _group_min(boxes: LeafBoxes, reach: np.ndarray, trees: list[int], gain: np.ndarray,
               lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(C,)``: the least summed contribution over the compatible tuples of reachable leaves
    of ``trees`` (boxes that share a point inside ``[lo, hi]``), per class."""
    leaves = [np.flatnonzero(reach & (boxes.tree == t)) for t in trees]
    low = np.maximum(boxes.low[leaves[0]], lo)
    up = boxes.up[leaves[0]]
    total = gain[leaves[0]]
    for more in leaves[1:]:
        low = np.maximum(low[:, None], boxes.low[more][None])
        up = np.minimum(up[:, None], boxes.up[more][None])
        ok = ((low < up) & (low <= hi)).all(-1)
        total = (total[:, None] + gain[more][None])[ok]
        low, up = low[ok], up[ok]
    return total.min(0)


def certify(model: object, x: Tensor, y: Tensor, threat: ThreatModel, *,
            group: int = 2) -> Tensor:
    """bool ``(N,)``: the prediction is ``y`` at every point of the L∞ ball of ``threat.eps``
    inside the Domain (Chen et al. 2019). Misclassified samples are never certified."""
    if threat.norm != "linf":
        raise ValueError(f"certify: the bound is for L∞ balls, got {threat.norm!r}")
    radius = torch.full((x.shape[0],), threat.eps, dtype=torch.float64)
    return (margin_bounds(model, x, y, threat.domain, radius, group=group) > 1e-9).all(1)


def certified_radius(model: object, x: Tensor, y: Tensor, domain: Domain, *,
                     group: int = 2, steps: int = 14, high: float = 1.0) -> Tensor:
    """float64 ``(N,)``: the largest L∞ radius that :func:`certify` proves, by bisection on
    ``[0, high]`` to ``high / 2**steps`` (0 for misclassified samples)."""
    low = torch.zeros(x.shape[0], dtype=torch.float64)
    up = torch.full((x.shape[0],), float(high), dtype=torch.float64)
    top = (margin_bounds(model, x, y, domain, up, group=group) > 1e-9).all(1)
    for _ in range(steps):
        mid = (low + up) / 2
        ok = (margin_bounds(model, x, y, domain, mid, group=group) > 1e-9).all(1)
        low, up = torch.where(ok, mid, low), torch.where(ok, up, mid)
    zero = (margin_bounds(model, x, y, domain, torch.zeros_like(low), group=group) > 1e-9).all(1)
    return torch.where(top, up, torch.where(zero, low, torch.zeros_like(low)))

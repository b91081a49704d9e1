"""One representation of a tree ensemble, whatever library trained it.

XGBoost, LightGBM and scikit-learn forests are parsed (:mod:`advlab.trees.parse`) into a
:class:`TreeEnsemble`: flat node arrays shared by every tree (feature, threshold, left and right
child, and a per-class leaf value), the roots of the trees, a bias and a link. The MILP attack,
the greedy heuristic, the robustness verifier and the model card all read this one structure.

Conventions, fixed by the parsers:

* A sample goes **left iff** ``x[feature] < threshold``, comparing float32 values. XGBoost splits
  that way; scikit-learn and LightGBM split on ``x <= t``, which for float32 inputs is the same
  as ``x < nextafter(t32, +inf)``, with ``t32`` the largest float32 not above ``t``.
* ``scores(x) = bias + Σ_trees value[leaf_t(x)]``, one value per class. Boosting: the scores are
  the logits (a binary model's margin ``m`` becomes ``[-m/2, m/2]``, whose softmax is
  ``sigmoid(m)``); ``link = "identity"``. Forests: the scores are the mean of the trees' leaf
  class distributions, the forest's ``predict_proba``; ``link = "log"`` gives logits
  ``log(scores)``. Either way the predicted class is the arg-max of the scores, and each score
  is linear in the leaf indicators: what the MILP and the verifier need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Link = Literal["identity", "log"]
LEAF = -1
_CHUNK_ROWS = 4096  # rows per traversal chunk (bounds the (rows, trees) index arrays)
_LOG_FLOOR = 1e-12  # a forest's zero probability becomes log(1e-12), a finite logit


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Flat node arrays of ``T`` trees with ``M`` nodes in all.

    Attributes:
        feature: int64 ``(M,)``, the split feature, ``-1`` at leaves.
        threshold: float32 ``(M,)``: go left iff ``x[feature] < threshold``.
        left, right: int64 ``(M,)`` children (global node indices), ``-1`` at leaves.
        value: float64 ``(M, C)``: a leaf's contribution to each class score (0 inside).
        roots: int64 ``(T,)``, each tree's root node.
        bias: float64 ``(C,)``. link: ``"identity"`` (scores are logits) or ``"log"``.
        n_features: the input width. library: who trained it (``"xgboost"``...).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    bias: np.ndarray
    link: Link
    n_features: int
    library: str

    def __post_init__(self) -> None:
        m = self.feature.shape[0]
        for name in ("threshold", "left", "right"):
            if getattr(self, name).shape != (m,):
                raise ValueError(f"TreeEnsemble: {name} has shape {getattr(self, name).shape}, "
                                 f"expected ({m},)")
        if self.value.ndim != 2 or self.value.shape[0] != m or self.bias.shape != \
                (self.value.shape[1],):
            raise ValueError(f"TreeEnsemble: value {self.value.shape} / bias {self.bias.shape} "
                             f"do not match {m} nodes")
        inner = self.feature >= 0
        if inner.any() and (self.feature[inner].max() >= self.n_features or
                            (self.left[inner] < 0).any() or (self.right[inner] < 0).any()):
            raise ValueError("TreeEnsemble: a split names a feature >= n_features or lacks a "
                             "child")
        if self.link not in ("identity", "log"):
            raise ValueError(f"TreeEnsemble: link must be 'identity' or 'log', got {self.link!r}")

    # ------------------------------------------------------------------ shape
    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.value.shape[1])

    @property
    def is_leaf(self) -> np.ndarray:
        return self.feature < 0

    def tree_of(self) -> np.ndarray:
        """int64 ``(M,)``: the tree each node belongs to."""
        owner = np.full(self.feature.shape[0], -1, dtype=np.int64)
        for t, root in enumerate(self.roots):
            stack = [int(root)]
            while stack:
                node = stack.pop()
                owner[node] = t
                if self.feature[node] >= 0:
                    stack += [int(self.left[node]), int(self.right[node])]
        return owner

    def depths(self) -> np.ndarray:
        """int64 ``(T,)``: each tree's depth (a lone leaf has depth 0)."""
        depth = np.zeros(self.feature.shape[0], dtype=np.int64)
        out = np.zeros(self.n_trees, dtype=np.int64)
        for t, root in enumerate(self.roots):
            stack = [int(root)]
            while stack:
                node = stack.pop()
                out[t] = max(out[t], depth[node])
                if self.feature[node] >= 0:
                    for child in (self.left[node], self.right[node]):
                        depth[child] = depth[node] + 1
                        stack.append(int(child))
        return out

    def thresholds(self) -> dict[int, np.ndarray]:
        """Sorted unique float32 thresholds of every feature some split uses."""
        inner = self.feature >= 0
        f, t = self.feature[inner], self.threshold[inner]
        return {int(j): np.unique(t[f == j]) for j in np.unique(f)}

    # ------------------------------------------------------------------ prediction
    def leaves(self, x: np.ndarray) -> np.ndarray:
        """int64 ``(N, T)``: the leaf each sample reaches in each tree. ``x``: ``(N, F)``."""
        x = self._check(x)
        out = np.empty((x.shape[0], self.n_trees), dtype=np.int64)
        for s in range(0, x.shape[0], _CHUNK_ROWS):
            xs = x[s:s + _CHUNK_ROWS]
            node = np.broadcast_to(self.roots, (xs.shape[0], self.n_trees)).copy()
            rows = np.arange(xs.shape[0])[:, None]
            while True:
                feat = self.feature[node]
                inner = feat >= 0
                if not inner.any():
                    break
                go_left = xs[rows, np.maximum(feat, 0)] < self.threshold[node]
                step = np.where(go_left, self.left[node], self.right[node])
                node = np.where(inner, step, node)
            out[s:s + _CHUNK_ROWS] = node
        return out

    def scores(self, x: np.ndarray) -> np.ndarray:
        """float64 ``(N, C)``: ``bias + Σ_t value[leaf_t(x)]`` (see the module docstring)."""
        leaves = self.leaves(x)
        return self.bias + self.value[leaves].sum(axis=1)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """float64 ``(N, C)`` logits: the scores, or their log for a forest."""
        s = self.scores(x)
        return s if self.link == "identity" else np.log(np.maximum(s, _LOG_FLOOR))

    def _check(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"TreeEnsemble: expected inputs (N, {self.n_features}), got shape "
                             f"{x.shape}")
        return np.ascontiguousarray(x, dtype=np.float32)

    # ------------------------------------------------------------------ card
    def card(self, feature_names: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """The model card: library, trees, depth, leaves and the features the splits use."""
        inner = self.feature >= 0
        used, counts = np.unique(self.feature[inner], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        depths = self.depths()

        def name(j: int) -> str:
            return feature_names[j] if feature_names is not None else f"x{j}"

        return {"library": self.library, "trees": self.n_trees, "classes": self.n_classes,
                "link": self.link, "max_depth": int(depths.max()) if depths.size else 0,
                "mean_depth": float(depths.mean()) if depths.size else 0.0,
                "leaves": int((~inner).sum()), "splits": int(inner.sum()),
                "features": self.n_features, "features_used": int(used.size),
                "top_features": [{"feature": name(int(used[i])), "index": int(used[i]),
                                  "splits": int(counts[i])} for i in order[:15]]}


def concatenate(trees: list[dict[str, np.ndarray]], *, bias: np.ndarray, link: Link,
                n_features: int, library: str) -> TreeEnsemble:
    """One :class:`TreeEnsemble` from per-tree arrays with local child indices.

    Each dict holds ``feature``, ``threshold``, ``left``, ``right`` (``-1`` at leaves) and
    ``value`` ``(nodes, C)``; node 0 is the root.
    """
    offsets, total = [], 0
    for tree in trees:
        offsets.append(total)
        total += tree["feature"].shape[0]

    def shifted(key: str) -> np.ndarray:
        return np.concatenate([np.where(t[key] >= 0, t[key] + o, LEAF)
                               for t, o in zip(trees, offsets, strict=True)]).astype(np.int64)

    return TreeEnsemble(
        feature=np.concatenate([t["feature"] for t in trees]).astype(np.int64),
        threshold=np.concatenate([t["threshold"] for t in trees]).astype(np.float32),
        left=shifted("left"), right=shifted("right"),
        value=np.concatenate([t["value"] for t in trees]).astype(np.float64),
        roots=np.asarray(offsets, dtype=np.int64), bias=np.asarray(bias, dtype=np.float64),
        link=link, n_features=n_features, library=library)

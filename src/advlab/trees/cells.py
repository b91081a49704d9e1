"""Cell geometry of a tree ensemble's input space under a Domain.

The thresholds of feature ``f`` cut its range into intervals ``[t_k, t_{k+1})`` (float32, "left
iff ``x < t``"); the ensemble is constant on every product of intervals (a *cell*). The fast
attacks move between cells: :class:`Cells` gives, for a batch of values of one feature, the
valid value nearest to a reference inside a given interval, respecting the feature's grid
(integer and binary features) and each sample's box of allowed values.
"""

from __future__ import annotations

import numpy as np

from advlab.domain import Domain
from advlab.trees.ensemble import TreeEnsemble

_DOWN = np.float32(-np.inf)


class Cells:
    """Per-feature thresholds and grids of ``ensemble`` under ``domain``."""

    def __init__(self, ensemble: TreeEnsemble, domain: Domain) -> None:
        n = ensemble.n_features
        self.thresholds = ensemble.thresholds()
        self.used = np.array(sorted(self.thresholds), dtype=np.int64)
        lower = domain.lower.expand(n).double().numpy()
        upper = domain.upper.expand(n).double().numpy()
        step = np.zeros(n)
        for kind in ("integer", "binary"):
            mask = domain.kind_mask(kind)  # type: ignore[arg-type]
            if mask is not None:
                values = (domain.resolution.expand(n).double().numpy() if kind == "integer"
                          else upper - lower)
                step = np.where(mask.numpy(), values, step)
        self.lower, self.step = lower, step  # step 0: continuous
        self.groups = [np.array(g, dtype=np.int64) for g in domain.one_hot_groups]
        self.in_group = np.zeros(n, dtype=bool)
        for g in self.groups:
            self.in_group[g] = True

    def interval(self, f: int, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 ``(L, U)``: the interval ``L <= v < U`` of each value (``±inf`` at the ends)."""
        t = self.thresholds[f]
        k = np.searchsorted(t, v.astype(np.float32), side="right")  # thresholds <= v
        low = np.where(k > 0, t[np.maximum(k - 1, 0)], -np.inf).astype(np.float32)
        up = np.where(k < len(t), t[np.minimum(k, len(t) - 1)], np.inf).astype(np.float32)
        return low, up

    def nearest(self, f: int, ref: np.ndarray, low: np.ndarray, up: np.ndarray,
                box_lo: np.ndarray, box_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The valid value of feature ``f`` nearest to ``ref`` with ``low <= v < up`` and
        ``box_lo <= v <= box_hi``: ``(values float32, exists bool)``, all arrays ``(N,)``."""
        below_up = np.where(np.isfinite(up), np.nextafter(up, _DOWN), np.inf)
        a = np.maximum(low.astype(np.float64), box_lo)
        b = np.minimum(below_up.astype(np.float64), box_hi)
        step = self.step[f]
        if step > 0:  # a grid lower + k * step
            k_lo = np.ceil((a - self.lower[f]) / step - 1e-6)
            k_hi = np.floor((b - self.lower[f]) / step + 1e-6)
            k = np.clip(np.round((ref - self.lower[f]) / step), k_lo, k_hi)
            v = (self.lower[f] + k * step).astype(np.float32)
            v = np.where(v >= up, (self.lower[f] + (k - 1) * step).astype(np.float32), v)
        else:
            v = np.clip(ref, a, b).astype(np.float32)
            v = np.minimum(np.maximum(v, low), np.where(np.isfinite(up), below_up, v))
        inside = (v >= box_lo - 1e-6) & (v <= box_hi + 1e-6)
        return v, (a <= b) & (v >= low) & (v < up) & inside

    def tighten(self, x: np.ndarray, x0: np.ndarray, box_lo: np.ndarray,
                box_hi: np.ndarray) -> np.ndarray:
        """Each feature moved as close to ``x0`` as its current cell allows (the prediction is
        unchanged); unused features back to ``x0`` (one-hot groups as a whole, when no split
        reads any of their members)."""
        out = x0.astype(np.float32).copy()
        keep = self.in_group.copy()
        for g in self.groups:
            keep[g] = np.isin(g, self.used).any()
        out[:, keep] = x[:, keep]
        for f in self.used:
            if self.in_group[f]:
                continue
            low, up = self.interval(f, x[:, f])
            v, ok = self.nearest(f, x0[:, f].astype(np.float64), low, up, box_lo[:, f],
                                 box_hi[:, f])
            out[:, f] = np.where(ok, v, x[:, f])
        return out

"""The Kantchelian et al. (ICML 2016) mixed-integer program of a tree ensemble under a Domain.

:class:`Program` builds the part that every sample shares once (predicate, leaf and input
variables; the tree, ordering, linking, grid and one-hot rows), and :meth:`Program.instance`
adds what one sample changes: the variables' bounds (its box of allowed values), the distance
rows around it and the row asking the scores of class ``j`` to beat those of its label.
:func:`snap` turns a solution into the nearest float32 point of the cell that the solution's
predicates select. The program itself is documented in :mod:`advlab.trees.milp`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from advlab.domain import Domain
from advlab.threat import ThreatModel
from advlab.trees.ensemble import TreeEnsemble

_MARGIN = 1e-5  # the winning class must lead by this much (ties go to the lower index)


def ensemble_of(model: object) -> TreeEnsemble:
    """The :class:`TreeEnsemble` of a :class:`~advlab.trees.TreeModel` (or the ensemble)."""
    if isinstance(model, TreeEnsemble):
        return model
    ensemble = getattr(model, "ensemble", None)
    if not isinstance(ensemble, TreeEnsemble):
        raise ValueError(f"expected a TreeModel or a TreeEnsemble, got {type(model).__name__}; "
                         "white-box tree attacks read the trees (advlab.trees.train_trees)")
    return ensemble


def sample_boxes(threat: ThreatModel, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """float64 ``(N, F)`` bounds of every feature's allowed values around each sample: the
    Domain's (bounds, immutable, monotone; discrete reach) and, for a finite eps, the ball's
    per-coordinate limit ``|x_f - x0_f| <= eps`` (exact for L∞, implied for L1)."""
    lo_d, hi_d = threat.delta_bounds(x.detach())
    lo, hi = (x + lo_d).double(), (x + hi_d).double()
    if threat.bounded and threat.norm in ("linf", "l1"):
        lo, hi = torch.maximum(lo, x.double() - threat.eps), torch.minimum(hi, x.double() +
                                                                           threat.eps)
    return lo.cpu().numpy(), hi.cpu().numpy()


class Program:
    """The shared rows and columns of the program for ``ensemble`` under ``domain``."""

    def __init__(self, ensemble: TreeEnsemble, domain: Domain, norm: str, tol: float) -> None:
        self.ensemble, self.norm, self.tol = ensemble, norm, tol
        n = ensemble.n_features
        thresholds = ensemble.thresholds()
        used = set(thresholds)
        groups = [list(g) for g in domain.one_hot_groups if used & set(g)]
        in_group = {f for g in groups for f in g}
        self.feats = np.array(sorted(used | in_group), dtype=np.int64)
        col = {int(f): k for k, f in enumerate(self.feats)}
        nx = len(self.feats)
        kinds = {k: domain.kind_mask(k) for k in ("integer", "binary")}
        lower = domain.lower.expand(n).double().numpy()
        upper = domain.upper.expand(n).double().numpy()
        res = domain.resolution.expand(n).double().numpy()
        grid = [f for f in self.feats if f not in in_group and any(
            m is not None and bool(m[f]) for m in kinds.values())]
        self.z_feat = np.array(grid, dtype=np.int64)
        binary = kinds["binary"]
        self.z_step = np.array([upper[f] - lower[f] if binary is not None and bool(binary[f])
                                else res[f] for f in grid], dtype=np.float64)
        self.z_lower = lower[self.z_feat]
        self.p_feat = np.concatenate([np.full(len(t), f) for f, t in sorted(thresholds.items())]
                                     ).astype(np.int64) if thresholds else np.zeros(0, np.int64)
        self.p_thr = np.concatenate([t for _, t in sorted(thresholds.items())]
                                    ).astype(np.float64) if thresholds else np.zeros(0)
        self.leaves = np.flatnonzero(ensemble.is_leaf)
        nz, npred, nl = len(self.z_feat), len(self.p_feat), len(self.leaves)
        nd = 1 if norm == "linf" else nx
        self.offsets = {"x": 0, "z": nx, "p": nx + nz, "l": nx + nz + npred,
                        "d": nx + nz + npred + nl}
        self.n_cols = self.offsets["d"] + nd
        self.integrality = np.zeros(self.n_cols, dtype=np.int64)
        self.integrality[[col[f] for f in in_group]] = 1
        self.integrality[nx:nx + nz + npred] = 1
        self._rows, self._lb, self._ub = [], [], []  # COO triplets and row bounds
        self._build(col, groups, lower, upper)
        self.group_cols = [[col[f] for f in g] for g in groups]
        self.in_group = np.array(sorted(in_group), dtype=np.int64)

    # ------------------------------------------------------------------ static rows
    def _row(self, cols: list[int] | np.ndarray, vals: list[float] | np.ndarray, lb: float,
             ub: float) -> None:
        self._rows.append((np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=float)))
        self._lb.append(lb)
        self._ub.append(ub)

    def _build(self, col: dict[int, int], groups: list[list[int]], lower: np.ndarray,
               upper: np.ndarray) -> None:
        o, e = self.offsets, self.ensemble
        step = np.zeros(len(lower))
        step[self.z_feat] = self.z_step
        for g in groups:
            step[g] = 1.0
        for k, (f, t) in enumerate(zip(self.p_feat, self.p_thr, strict=True)):
            xc, pc = col[int(f)], o["p"] + k
            left, right = self._sides(k, float(t), step[f], lower[f])
            m_up, m_low = max(0.0, upper[f] - left), max(0.0, right - lower[f])
            self._row([xc, pc], [1.0, m_up], -math.inf, left + m_up)  # p=1 ⇒ x <= left
            self._row([xc, pc], [1.0, m_low], right, math.inf)  # p=0 ⇒ x >= right
            if k + 1 < len(self.p_feat) and self.p_feat[k + 1] == f:
                self._row([pc, pc + 1], [1.0, -1.0], -math.inf, 0.0)  # ordered predicates
        for k, f in enumerate(self.z_feat):  # x = lower + step * z
            self._row([col[int(f)], o["z"] + k], [1.0, -self.z_step[k]], self.z_lower[k],
                      self.z_lower[k])
        for g in groups:
            self._row([col[f] for f in g], [1.0] * len(g), 1.0, 1.0)
        leaf_col = np.full(e.feature.shape[0], -1, dtype=np.int64)
        leaf_col[self.leaves] = o["l"] + np.arange(len(self.leaves))
        pred_col = {(int(f), float(t)): o["p"] + k
                    for k, (f, t) in enumerate(zip(self.p_feat, self.p_thr, strict=True))}
        for root in e.roots:
            under = self._subtree_leaves(int(root), leaf_col)
            self._row(under[int(root)], np.ones(len(under[int(root)])), 1.0, 1.0)
            for node in under:
                if e.feature[node] < 0:
                    continue
                pc = pred_col[(int(e.feature[node]), float(e.threshold[node]))]
                left, right = under[int(e.left[node])], under[int(e.right[node])]
                self._row(np.append(left, pc), np.append(np.ones(len(left)), -1.0), -math.inf,
                          0.0)
                self._row(np.append(right, pc), np.append(np.ones(len(right)), 1.0), -math.inf,
                          1.0)
        self.n_static = len(self._rows)

    def _sides(self, k: int, t: float, step: float, lower: float) -> tuple[float, float]:
        """The values the program allows left and right of threshold ``k``: ``x <= left``
        when ``x < t`` and ``x >= right`` otherwise. On a grid they are its neighbours of
        ``t``, exactly; a continuous feature keeps ``tol`` (at most half the gap to the next
        threshold or bound below, so that no interval is lost) from ``t`` on its left."""
        if step > 0:  # the first grid value that float32 puts at or right of t
            k0 = math.floor((t - lower) / step)
            up = next(k for k in range(k0 - 1, k0 + 3)
                      if np.float32(lower + k * step) >= np.float32(t))
            return lower + (up - 1) * step, lower + up * step
        below = self.p_thr[k - 1] if k > 0 and self.p_feat[k - 1] == self.p_feat[k] else lower
        return t - min(self.tol, max(t - below, 0.0) / 2), t

    def _subtree_leaves(self, root: int, leaf_col: np.ndarray) -> dict[int, np.ndarray]:
        """Leaf columns under every node of one tree (children before parents)."""
        e, order, stack = self.ensemble, [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            if e.feature[node] >= 0:
                stack += [int(e.left[node]), int(e.right[node])]
        under: dict[int, np.ndarray] = {}
        for node in reversed(order):
            under[node] = (np.array([leaf_col[node]]) if e.feature[node] < 0 else
                           np.concatenate([under[int(e.left[node])], under[int(e.right[node])]]))
        return under

    # ------------------------------------------------------------------ one sample
    def instance(self, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, y: int, j: int,
                 eps: float) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray],
                                      list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """``(c, integrality, (lower, upper) bounds, [(A, lb, ub)])`` for sample ``x0``."""
        o, e, f = self.offsets, self.ensemble, self.feats
        nx = len(f)
        lb, ub = np.zeros(self.n_cols), np.ones(self.n_cols)
        lb[:nx], ub[:nx] = lo[f], hi[f]
        zl = np.ceil((lo[self.z_feat] - self.z_lower) / self.z_step - 1e-9)
        zu = np.floor((hi[self.z_feat] - self.z_lower) / self.z_step + 1e-9)
        lb[o["z"]:o["p"]], ub[o["z"]:o["p"]] = zl, zu
        pl, pu = lb[o["p"]:o["l"]], ub[o["p"]:o["l"]]
        pl[self.p_thr > hi[self.p_feat]] = 1.0  # every allowed value is left of t
        pu[self.p_thr <= lo[self.p_feat]] = 0.0  # every allowed value is right of t
        lb[o["d"]:], ub[o["d"]:] = 0.0, math.inf
        if self.norm == "linf" and math.isfinite(eps):
            ub[o["d"]] = eps
        c = np.zeros(self.n_cols)
        c[o["d"]:] = 1.0
        rows = list(self._rows)
        rlb, rub = list(self._lb), list(self._ub)
        d = [o["d"]] * nx if self.norm == "linf" else list(range(o["d"], o["d"] + nx))
        for k in range(nx):
            rows += [(np.array([k, d[k]]), np.array([1.0, -1.0])),
                     (np.array([k, d[k]]), np.array([-1.0, -1.0]))]
            rlb += [-math.inf, -math.inf]
            rub += [x0[f[k]], -x0[f[k]]]
        if self.norm == "l1" and math.isfinite(eps):
            rows.append((np.arange(o["d"], self.n_cols), np.ones(nx)))
            rlb.append(-math.inf)
            rub.append(eps)
        gain = e.value[self.leaves, j] - e.value[self.leaves, y]
        keep = gain != 0
        rows.append((o["l"] + np.flatnonzero(keep), gain[keep]))
        rlb.append(e.bias[y] - e.bias[j] + _MARGIN)
        rub.append(math.inf)
        r = np.concatenate([np.full(len(cols), i) for i, (cols, _) in enumerate(rows)])
        cc = np.concatenate([cols for cols, _ in rows])
        vv = np.concatenate([vals for _, vals in rows])
        from scipy import sparse

        a = sparse.coo_array((vv, (r, cc)), shape=(len(rows), self.n_cols))
        return c, self.integrality, (lb, ub), [(a, np.array(rlb), np.array(rub))]

    def x_of(self, sol: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """The solver's own input point (integral members rounded), ``x0`` off the program."""
        x = x0.copy()
        values = sol[:len(self.feats)].copy()
        ints = self.integrality[:len(self.feats)] == 1
        values[ints] = np.round(values[ints])
        x[self.feats] = values
        zc = slice(self.offsets["z"], self.offsets["p"])
        x[self.z_feat] = self.z_lower + self.z_step * np.round(sol[zc])
        return x


def snap(program: Program, sol: np.ndarray, x0: np.ndarray, lo: np.ndarray,
         hi: np.ndarray) -> np.ndarray:
    """The float32 point nearest to ``x0`` in the cell of the solution's predicates (for each
    continuous feature, ``max{t : p = 0} <= x < min{t : p = 1}``, inside ``[lo, hi]``); discrete
    features and one-hot members keep the solver's (rounded) values."""
    x = program.x_of(sol, x0).astype(np.float32)
    p = np.round(sol[program.offsets["p"]:program.offsets["l"]]) > 0.5
    grid = set(program.z_feat.tolist()) | set(program.in_group.tolist())
    for f in np.unique(program.p_feat):
        if int(f) in grid:
            continue
        mine = program.p_feat == f
        t = program.p_thr[mine].astype(np.float32)
        left_of, right_of = t[p[mine]], t[~p[mine]]
        low = np.float32(max(right_of.max() if right_of.size else -np.inf, lo[f]))
        up_cell = np.nextafter(left_of.min(), np.float32(-np.inf)) if left_of.size else np.inf
        high = np.float32(min(up_cell, hi[f]))
        if low <= high:
            x[f] = np.clip(np.float32(x0[f]), low, high)
    return x

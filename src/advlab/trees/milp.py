"""The exact minimal evasion of a tree ensemble as a mixed-integer program (Kantchelian, Tygar,
Joseph, "Evasion and Hardening of Tree Ensemble Classifiers", ICML 2016, §3, arXiv:1509.07892).

The thresholds of the trees cut each feature into intervals; an input is adversarial exactly
when the leaves it reaches sum to a winning score for another class. Kantchelian et al. write
this with one binary *predicate* variable ``p[f,k] = [x_f < t_{f,k}]`` per feature and threshold
(ordered: ``p[f,k] <= p[f,k+1]``) and one *leaf* variable per leaf (each tree's sum to 1; a leaf
under the left child of a node needs that node's predicate, under the right child its negation),
so that the scores are linear in the leaves. advlab adds the input ``x`` itself, tied to the
predicates by big-M rows (``p = 1 ⇒ x_f <= t - tol``, ``p = 0 ⇒ x_f >= t``), which lets the
Domain enter as it is: bounds, immutable features (fixed), monotone and add-only features
(one-sided), integer and binary features (integer variables on their grid) and one-hot groups
(binary members summing to 1). The objective is the L∞ radius (one variable bounding every
``|x_f - x0_f|``) or the L1 distance (one variable per feature). The solver is HiGHS
(``scipy.optimize.milp``); one program per sample and per candidate class.

The solution's predicates fix the interval of every feature; the returned point is the nearest
one of that cell in float32 (the solver's ``tol`` margin removed), checked on the ensemble. The
program's LP relaxation is a lower bound on the minimal distance (:func:`lp_bound`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from torch import Tensor

from advlab.threat import ThreatModel
from advlab.trees.ensemble import TreeEnsemble
from advlab.trees.program import Program, ensemble_of, sample_boxes, snap

TOL = 1e-5  # strictness of "x < t" in the program (the returned point is snapped exactly)


@dataclass(frozen=True)
class MilpResult:
    """Per-sample results of :func:`solve`: ``x_adv`` ``(N, F)``; ``norm`` ``(N,)`` (inf where
    no adversarial point exists within the threat); ``optimal`` ``(N,)`` bool (proved optimal
    or proved infeasible); ``seconds`` ``(N,)``."""

    x_adv: Tensor
    norm: Tensor
    optimal: Tensor
    seconds: Tensor


def kantchelian_milp(model: object, x: Tensor, y: Tensor, threat: ThreatModel, *,
                     target: Tensor | None = None, time_limit: float | None = None) -> Tensor:
    """Minimal L∞ or L1 evasion of a tree ensemble (Kantchelian et al., ICML 2016, §3): the
    exact optimum of the MILP of the module docstring, under ``threat.domain``.

    Args:
        model: a :class:`~advlab.trees.TreeModel` or a :class:`~advlab.trees.TreeEnsemble`.
        x: ``(N, F)`` inside the domain; y: int64 ``(N,)``; target: optional int64 ``(N,)``.
        threat: ``norm`` ``"linf"`` or ``"l1"``; a finite ``eps`` bounds the search (a sample
            without an adversarial point within it is certified robust, exactly).
        time_limit: seconds per program (``None``: none); past it the best point found so far.

    Returns:
        ``x_adv`` like ``x``: the nearest adversarial point, or ``x`` where none exists.
    """
    return solve(model, x, y, threat, target=target, time_limit=time_limit).x_adv


def solve(model: object, x: Tensor, y: Tensor, threat: ThreatModel, *,
          target: Tensor | None = None, time_limit: float | None = None,
          relax: bool = False) -> MilpResult:
    """:func:`kantchelian_milp` with its per-sample norms, optimality and times; ``relax=True``
    solves the LP relaxation instead (no point is returned: ``x_adv = x``)."""
    ensemble = ensemble_of(model)
    if threat.norm not in ("linf", "l1"):
        raise ValueError(f"kantchelian_milp: norm must be 'linf' or 'l1', got {threat.norm!r}")
    if x.dim() != 2 or x.shape[1] != ensemble.n_features or y.shape != (x.shape[0],):
        raise ValueError(f"kantchelian_milp: need x (N, {ensemble.n_features}) and y (N,), got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    threat.domain.validate(x, name="kantchelian_milp: x")
    program = Program(ensemble, threat.domain, threat.norm, TOL)
    lo, hi = sample_boxes(threat, x)
    x0 = x.detach().cpu().double().numpy()
    labels = y.cpu().numpy()
    out, norms = x0.astype(np.float32).copy(), np.full(x.shape[0], math.inf)
    optimal, seconds = np.ones(x.shape[0], dtype=bool), np.zeros(x.shape[0])
    pred = ensemble.scores(x0.astype(np.float32)).argmax(1)
    for i in range(x.shape[0]):
        start = time.perf_counter()
        if pred[i] != labels[i] if target is None else pred[i] == int(target[i]):
            norms[i] = 0.0  # already misclassified (or on target): nothing to do
            continue
        classes = [int(target[i])] if target is not None else \
            [j for j in range(ensemble.n_classes) if j != labels[i]]
        for j in classes:
            value, point, proved = _one(program, x0[i], lo[i], hi[i], int(labels[i]), j,
                                        target is not None, threat, time_limit, relax)
            optimal[i] &= proved
            if value < norms[i]:
                norms[i] = value
                if point is not None:
                    out[i] = point
        seconds[i] = time.perf_counter() - start
    as_t = torch.from_numpy
    return MilpResult(as_t(out).to(device=x.device, dtype=x.dtype), as_t(norms),
                      as_t(optimal), as_t(seconds))


def lp_bound(model: object, x: Tensor, y: Tensor, threat: ThreatModel) -> Tensor:
    """A lower bound ``(N,)`` on each sample's minimal adversarial distance: the optimum of the
    MILP's LP relaxation, less the strictness margin ``TOL`` (inf: certified beyond
    ``threat.eps``). 0 for misclassified samples."""
    norms = solve(model, x, y, threat, relax=True).norm
    return torch.where(torch.isfinite(norms), (norms - TOL).clamp_min(0.0), norms)


def _one(program: Program, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, y: int, j: int,
         targeted: bool, threat: ThreatModel, time_limit: float | None,
         relax: bool) -> tuple[float, np.ndarray | None, bool]:
    """One program: (distance, adversarial point or None, proved optimal or infeasible)."""
    c, integrality, bounds, rows = program.instance(x0, lo, hi, y, j, threat.eps)
    options: dict[str, float | bool] = {"disp": False, "mip_rel_gap": 1e-9}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(c, integrality=np.zeros_like(integrality) if relax else integrality,
               bounds=Bounds(bounds[0], bounds[1]),
               constraints=[LinearConstraint(sparse.csr_array(a), lb, ub) for a, lb, ub in rows],
               options=options)
    if res.x is None:  # infeasible: no adversarial point of class j within the threat
        return math.inf, None, res.status == 2
    if relax:
        return float(res.fun), None, res.status == 0
    point = snap(program, res.x, x0, lo, hi)
    if not _fooled(program.ensemble, point, y, j if targeted else None):
        point = program.x_of(res.x, x0).astype(np.float32)  # the solver's own point
        if not _fooled(program.ensemble, point, y, j if targeted else None):
            return math.inf, None, False
    delta = point.astype(np.float64) - x0
    dist = float(np.abs(delta).max() if threat.norm == "linf" else np.abs(delta).sum())
    return dist, point, res.status == 0


def _fooled(ensemble: TreeEnsemble, point: np.ndarray, y: int, target: int | None) -> bool:
    pred = int(ensemble.scores(point[None].astype(np.float32))[0].argmax())
    return pred != y if target is None else pred == target

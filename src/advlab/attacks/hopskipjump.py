"""HopSkipJump, decision-based and minimal-norm, in L2 and L∞ (Chen, Jordan, Wainwright, IEEE S&P
2020). Conventions: :mod:`advlab.attacks.common`.

The attack sees the model only through an :class:`~advlab.attacks.oracle.Oracle` that returns
labels (pass an ``Oracle`` as ``model`` to impose a query budget or read the per-sample query
counts; any other model is wrapped in one).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from advlab import norms
from advlab.attacks.common import Model, check_inputs, expand_as_batch, index_or_none
from advlab.attacks.oracle import Oracle, QueryBudgetExceeded, as_oracle
from advlab.threat import ThreatModel

_HALVINGS = 20  # most halvings of the geometric step-size search per iteration
_MIN_EVALS = 10  # fewest gradient-estimation queries worth an iteration
_CHUNK = 1 << 20  # elements per block of gradient-estimation queries (bounds memory)


def hopskipjump(model: Model | Oracle, x: Tensor, y: Tensor, threat: ThreatModel, *,
                target: Tensor | None = None, max_queries: int = 1000, steps: int = 64,
                initial_evals: int = 100, max_evals: int = 10_000, gamma: float = 1.0,
                init_trials: int = 100, starting_points: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """HopSkipJumpAttack (Chen, Jordan, Wainwright, "HopSkipJumpAttack: A Query-Efficient
    Decision-Based Attack", IEEE S&P 2020, Algorithm 2; arXiv:1904.02144).

    Minimises ``||x' - x||_p`` over adversarial ``x'`` from labels only. From an adversarial
    start (uniform noise in the domain, or ``starting_points``), each iteration t: (1) binary
    search on the segment to ``x`` (L2) or on the L∞ box around ``x`` down to the boundary, to
    precision ``theta = gamma / d^(3/2)`` (L2) or ``gamma / d^2`` (L∞); (2) estimates the
    boundary's normal by Monte Carlo with ``B_t = initial_evals * sqrt(t)`` (at most
    ``max_evals``) label queries at ``x_t + delta_t u_b``, the mean of the signs subtracted as
    a baseline, ``delta_t = sqrt(d) theta d_{t-1}`` (L2) or ``d theta d_{t-1}`` (L∞); (3) steps
    along it
    (its sign for L∞) with the geometric search ``xi_t = ||x_t - x||_p / sqrt(t)``, halved until
    adversarial. Every queried point is clipped into the domain (and repaired on discrete ones).
    A sample stops when its distance is at most a finite ``threat.eps``, after ``steps``
    iterations, or when its ``max_queries`` cannot pay for another iteration.

    Args:
        max_queries: per sample, every query included. gamma: the paper's theta scale.
        init_trials: random draws searching for an adversarial start.
        starting_points: optional adversarial starts ``(N, *D)`` (e.g. images of the target).
        Others: see :mod:`advlab.attacks.common`; ``threat.norm`` is ``"l2"`` or ``"linf"``.

    Returns:
        The closest adversarial point found per sample, ``x`` where none was found. Raises
        :class:`~advlab.attacks.oracle.QueryBudgetExceeded` (with ``.partial``) when an oracle's
        budget runs out.
    """
    check_inputs("hopskipjump", model, x, y, threat, target)
    if threat.norm not in ("l2", "linf"):
        raise ValueError(f"hopskipjump: norm must be 'l2' or 'linf', got {threat.norm!r}")
    if min(steps, initial_evals, max_evals, init_trials) < 1 or gamma <= 0:
        raise ValueError(f"hopskipjump: steps, initial_evals, max_evals and init_trials must be "
                         f">= 1 and gamma > 0, got {steps}, {initial_evals}, {max_evals}, "
                         f"{init_trials}, {gamma}")
    if starting_points is not None and starting_points.shape != x.shape:
        raise ValueError(f"hopskipjump: starting_points must have x's shape {tuple(x.shape)}, "
                         f"got {tuple(starting_points.shape)}")
    d = math.prod(x.shape[1:])
    theta = gamma / (d ** 1.5 if threat.norm == "l2" else d ** 2)
    search = max(1, math.ceil(math.log2(1 / theta)))  # binary-search queries, fixed
    if max_queries < search + 2:
        raise ValueError(f"hopskipjump: max_queries={max_queries} is too small: the start and "
                         f"one binary search take {search + 2} queries here")
    run = _Run(as_oracle(model, "hopskipjump", "labels", x.shape[0]), x.detach(), y, target,
               threat, max_queries, theta, search, generator)
    try:
        run.start(starting_points, init_trials)
        for t in range(1, steps + 1):
            if not run.iterate(t, initial_evals, max_evals):
                break
    except QueryBudgetExceeded as err:
        raise err.with_partial("hopskipjump", run.out, run.oracle.per_sample) from None
    return run.out.detach()


class _Run:
    """The state of one attack: every sample's best point, and the active samples' boundary
    points, distances and query counts."""

    def __init__(self, oracle: Oracle, x: Tensor, y: Tensor, target: Tensor | None,
                 threat: ThreatModel, max_queries: int, theta: float, search: int,
                 generator: torch.Generator | None) -> None:
        self.oracle, self.threat, self.generator = oracle, threat, generator
        self.x, self.y, self.target = x, y, target
        self.max_queries, self.theta, self.search = max_queries, theta, search
        self.out = x.clone()
        self.used = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        self.lo, self.hi = threat.domain.delta_bounds(x)
        self.idx = torch.arange(x.shape[0], device=x.device)
        self.xb = x
        self.dist = x.new_zeros(x.shape[0])

    # ---------------------------------------------------------------- queries
    def _adversarial(self, points: Tensor, idx: Tensor) -> Tensor:
        """One label query per row: is it adversarial for its sample ``idx``?"""
        labels = self.oracle.labels(points, idx)
        self.used.index_add_(0, idx, torch.ones_like(idx))
        t = index_or_none(self.target, idx)
        return labels != self.y[idx] if t is None else labels == t

    def _valid(self, points: Tensor, idx: Tensor) -> Tensor:
        """Clip into the domain's box around each sample's ``x``; repair discrete features."""
        x0 = self.x[idx]
        out = x0 + (points - x0).clamp(self.lo[idx], self.hi[idx])
        if self.threat.domain.is_discrete:
            out = self.threat.domain.project(out, x0)
        return out

    def _keep(self, keep: Tensor) -> None:
        rows = keep.nonzero()[:, 0]
        self.idx, self.xb, self.dist = self.idx[rows], self.xb[rows], self.dist[rows]

    # ---------------------------------------------------------------- phases
    def start(self, starting_points: Tensor | None, init_trials: int) -> None:
        """Leave already-adversarial samples unchanged; find an adversarial start for the others
        and take it to the boundary."""
        all_idx = self.idx
        clean_adv = self._adversarial(self.x, all_idx)
        found = clean_adv.clone()  # done: nothing to do
        start = self.x.clone()
        todo = all_idx[~clean_adv]
        if starting_points is not None and todo.numel():
            pts = self._valid(starting_points.detach()[todo], todo)
            ok = self._adversarial(pts, todo)
            start[todo[ok]] = pts[ok]
            found[todo[ok]] = True
        lo, hi = self._noise_box()
        budget = min(init_trials, self.max_queries - self.search - int(self.used.max()))
        for _ in range(max(0, budget)):
            todo = all_idx[~found]
            if todo.numel() == 0:
                break
            u = torch.rand(self.x[todo].shape, generator=self.generator, dtype=self.x.dtype,
                           device=self.x.device)
            pts = self._valid(self.x[todo] + lo[todo] + u * (hi[todo] - lo[todo]), todo)
            ok = self._adversarial(pts, todo)
            start[todo[ok]] = pts[ok]
            found[todo[ok]] = True
        searching = found & ~clean_adv
        self._keep(searching)
        self.xb = self._binary_search(start[self.idx])
        self.dist = norms.norm(self.xb - self.x[self.idx], self.threat.norm)
        self.out[self.idx] = self.xb

    def _noise_box(self) -> tuple[Tensor, Tensor]:
        """The box of perturbations random starts are drawn from: the domain's, with infinite
        sides replaced by ten times the sample's largest magnitude (at least 10)."""
        scale = 10 * (1 + self.x.flatten(1).abs().amax(1))
        scale = expand_as_batch(scale, self.x)
        lo = torch.where(torch.isfinite(self.lo), self.lo, -scale)
        hi = torch.where(torch.isfinite(self.hi), self.hi, scale)
        return lo, hi

    def iterate(self, t: int, initial_evals: int, max_evals: int) -> bool:
        """One iteration of Algorithm 2 on the active samples; ``False`` once none is left."""
        remaining = self.max_queries - self.used[self.idx] - _HALVINGS - self.search
        keep = remaining >= _MIN_EVALS
        if self.threat.bounded:
            keep &= self.dist > self.threat.eps
        if not bool(keep.all()):
            self._keep(keep)
            remaining = remaining[keep]
        if self.idx.numel() == 0:
            return False
        evals = min(int(initial_evals * math.sqrt(t)), max_evals, int(remaining.min()))
        direction = self._direction(evals)
        x0 = self.x[self.idx]
        xi = self.dist / math.sqrt(t)
        moved = self.xb.clone()
        pending = torch.ones_like(self.idx, dtype=torch.bool)
        for _ in range(_HALVINGS):  # geometric step-size search
            rows = pending.nonzero()[:, 0]
            if rows.numel() == 0:
                break
            cand = self._valid(self.xb[rows] + expand_as_batch(xi[rows], x0) * direction[rows],
                               self.idx[rows])
            ok = self._adversarial(cand, self.idx[rows])
            moved[rows[ok]] = cand[ok]
            pending[rows[ok]] = False
            xi = torch.where(pending, xi / 2, xi)
        self.xb = self._binary_search(moved)
        dist = norms.norm(self.xb - x0, self.threat.norm)
        better = dist < norms.norm(self.out[self.idx] - x0, self.threat.norm)
        self.out[self.idx] = torch.where(expand_as_batch(better, x0), self.xb,
                                         self.out[self.idx])
        self.dist = dist
        return True

    def _binary_search(self, adv: Tensor) -> Tensor:
        """Boundary points between each active ``x`` (not adversarial) and ``adv`` (adversarial),
        on the adversarial side, to ``theta`` in the blend parameter (``search`` queries)."""
        idx = self.idx
        if idx.numel() == 0:
            return adv
        x0 = self.x[idx]
        low, high = x0.new_zeros(len(idx)), x0.new_ones(len(idx))
        reach = expand_as_batch(norms.norm(adv - x0, "linf"), x0) \
            if self.threat.norm == "linf" else None

        def blend(mid: Tensor) -> Tensor:
            """The paper's projection at blend ``mid``: the segment x0 -> adv (L2), or adv
            clipped to the L∞ ball of radius ``mid·||adv - x0||_∞`` (L∞)."""
            m = expand_as_batch(mid, x0)
            if reach is None:
                return x0 + m * (adv - x0)
            return torch.minimum(torch.maximum(adv, x0 - m * reach), x0 + m * reach)

        for _ in range(self.search):
            mid = (low + high) / 2
            ok = self._adversarial(self._valid(blend(mid), idx), idx)
            high = torch.where(ok, mid, high)
            low = torch.where(ok, low, mid)
        # high == 1 is adv itself; any other high was queried as adversarial
        return torch.where(expand_as_batch(high == 1, x0), adv, self._valid(blend(high), idx))

    def _direction(self, evals: int) -> Tensor:
        """Monte Carlo estimate of the boundary normal at the active boundary points, with the
        baseline, as a unit L2 direction (L2) or its sign (L∞)."""
        n, x0 = len(self.idx), self.x[self.idx]
        d = x0[0].numel()
        scale = (math.sqrt(d) if self.threat.norm == "l2" else d) * self.theta
        delta = expand_as_batch(scale * self.dist, x0)
        movable = (self.lo[self.idx] < self.hi[self.idx]).to(x0.dtype)
        grads = []
        per = max(1, _CHUNK // max(1, evals * d))
        for s in range(0, n, per):
            rows = torch.arange(s, min(n, s + per), device=x0.device)
            m = len(rows)
            shape = (m, evals, *x0.shape[1:])
            if self.threat.norm == "l2":  # Gaussian directions; uniform in the cube for L∞
                u = torch.randn(shape, generator=self.generator, dtype=x0.dtype, device=x0.device)
            else:
                u = 2 * torch.rand(shape, generator=self.generator, dtype=x0.dtype,
                                   device=x0.device) - 1
            u = u * movable[rows, None]
            ones = [1] * (x0.dim() - 1)
            u = u / u.flatten(2).norm(dim=2).clamp_min(1e-12).view(m, evals, *ones)
            base = self.xb[rows, None]
            dl = delta[rows, None]
            owner = self.idx[rows].repeat_interleave(evals)
            pts = self._valid((base + dl * u).flatten(0, 1), owner).view(shape)
            u = (pts - base) / dl.clamp_min(1e-30)  # the step the domain allowed
            phi = self._adversarial(pts.flatten(0, 1), owner).view(m, evals).to(x0.dtype) * 2 - 1
            mean = phi.mean(dim=1, keepdim=True)
            # the baseline; when every sign agrees, subtracting it would zero the estimate
            centred = torch.where(mean.abs() == 1, phi, phi - mean)
            w = centred.view(m, evals, *ones)
            grads.append((w * u).mean(dim=1))
        grad = torch.cat(grads)
        if self.threat.norm == "linf":
            return grad.sign()
        flat = grad.flatten(1)
        unit: Tensor = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return unit.view_as(grad)

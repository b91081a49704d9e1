"""The threat model: what the attacker may do (a norm ball around each input, inside a Domain).

The threat is kept apart from the search (the attack) and from the scoring (evaluation), as in
Foolbox: a :class:`ThreatModel` owns the projection onto the allowed set, the membership test and
the random starting point, and nothing else. Targeting is not part of it: targeted attacks take a
per-call ``target=`` tensor.

The allowed set for a clean input ``x`` is ``{x' : ||x' - x||_p <= eps} ∩ domain``, where the
domain also constrains ``x' - x`` through immutable and monotone features. ``eps = math.inf``
means "minimise fully" (minimal-norm attacks): the ball is the whole space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from advlab import norms
from advlab.domain import Domain
from advlab.norms import Norm


@dataclass(frozen=True)
class ThreatModel:
    """An Lp ball of radius ``eps`` around each input, intersected with a :class:`Domain`.

    Args:
        norm: ``"linf"``, ``"l2"``, ``"l1"`` or ``"l0"`` (``eps`` then counts changed features).
        eps: the radius, ``>= 0``; ``math.inf`` for minimal-norm attacks.
        domain: the valid input space (default: the box ``[0, 1]``).
    """

    norm: Norm
    eps: float
    domain: Domain = field(default_factory=Domain)

    def __post_init__(self) -> None:
        norms.check_norm(self.norm)
        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float)):
            raise ValueError(f"ThreatModel: eps must be a number, got {self.eps!r}")
        if math.isnan(self.eps) or self.eps < 0:
            raise ValueError(f"ThreatModel: eps must be >= 0, got {self.eps!r}")
        if self.norm == "l0" and math.isfinite(self.eps) and self.eps != int(self.eps):
            raise ValueError(f"ThreatModel: an L0 eps counts features, got {self.eps!r}")
        if not isinstance(self.domain, Domain):
            raise ValueError(f"ThreatModel: domain must be a Domain, got {type(self.domain)!r}")
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def bounded(self) -> bool:
        """False for ``eps = inf`` (minimal-norm attacks)."""
        return math.isfinite(self.eps)

    def _check(self, x_adv: Tensor, x: Tensor) -> None:
        if x_adv.shape != x.shape:
            raise ValueError(f"ThreatModel: x_adv has shape {tuple(x_adv.shape)} but x has "
                             f"{tuple(x.shape)}")

    def project(self, x_adv: Tensor, x: Tensor, *, relax: bool = False) -> Tensor:
        """Nearest point of the ball around ``x`` ∩ the domain.

        The continuous part is the exact Euclidean projection onto ball ∩ box (the box folds in
        bounds, immutable and monotone features; see :func:`advlab.norms.project`). With
        ``relax=False`` (default) integer, binary and one-hot features are then repaired to a valid
        point that stays in the ball (:meth:`repair`); attacks pass ``relax=True`` inside their
        loop and repair once at the end.
        """
        self._check(x_adv, x)
        if not self.bounded and not relax:
            # no ball: the nearest valid point is the domain's own projection, which sees the
            # one-hot scores of x_adv itself (a box clip first would tie every score above 1)
            return self.domain.project(x_adv, x)
        lo, hi = self.delta_bounds(x)
        delta = norms.project(x_adv - x, self.norm, self.eps, lower=lo, upper=hi)
        out = x + delta
        if not relax and self.domain.is_discrete:
            out = self.repair(out, x)
        return out

    def delta_bounds(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-coordinate bounds ``lo <= delta <= hi`` of the perturbations an attack should
        search, for a relaxed (continuous) optimisation.

        The domain's bounds (:meth:`Domain.delta_bounds`), tightened for a bounded Lp threat
        (L∞, L2, L1: every coordinate obeys ``|delta_i| <= eps``) so that integer, binary and
        one-hot features only range over the grid values they can actually reach: a binary flag
        cannot flip when ``eps < 1``, and an integer count with grid step 0.2 cannot move at
        ``eps = 0.1``. Without this, an attack spends its steps on relaxed values that the final
        repair rounds away, and ends weaker than a single FGSM step.
        """
        lo, hi = self.domain.delta_bounds(x)
        d = self.domain
        if not self.bounded or self.norm == "l0" or not d.is_discrete:
            return lo, hi
        flat_lo, flat_hi = lo.flatten(1), hi.flatten(1)
        step = torch.zeros(flat_lo.shape[1], dtype=lo.dtype, device=lo.device)
        for kind in ("integer", "binary"):
            mask = d.kind_mask(kind)  # type: ignore[arg-type]
            if mask is None or not mask.any():
                continue
            res = (d.resolution if kind == "integer" else d.upper - d.lower)  # type: ignore[operator]
            res = res.to(step).expand(step.shape[0])
            step = torch.where(mask.to(step.device), res, step)
        for group in d.one_hot_groups:
            step[list(group)] = 1.0
        grid = step > 0
        if not bool(grid.any()):
            return lo, hi
        safe = torch.where(grid, step, torch.ones_like(step))
        reach_down = torch.floor(torch.clamp(-flat_lo, max=self.eps) / safe + 1e-6) * safe
        reach_up = torch.floor(torch.clamp(flat_hi, max=self.eps) / safe + 1e-6) * safe
        flat_lo = torch.where(grid, -reach_down, flat_lo)
        flat_hi = torch.where(grid, reach_up, flat_hi)
        return flat_lo.reshape(lo.shape), flat_hi.reshape(hi.shape)

    def repair(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Make a relaxed point valid for a discrete domain without leaving the ball.

        Each sample first gets the nearest valid point (:meth:`Domain.project`); where that
        rounding would leave the ball, the sample falls back to rounding its integer and binary
        features towards ``x`` and keeping ``x``'s one-hot categories, which never increases any
        Lp norm of the perturbation.
        """
        self._check(x_adv, x)
        nearest = self.domain.project(x_adv, x)
        ok = norms.norm(nearest - x, self.norm) <= self._limit(x)
        if bool(ok.all()):
            return nearest
        cautious = self._round_towards(x_adv, x)
        keep = ok.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(keep, nearest, cautious)

    def _round_towards(self, x_adv: Tensor, x: Tensor) -> Tensor:
        d = self.domain
        flat, flat0 = self.domain.clip(x_adv, x).flatten(1), x.flatten(1)
        out = flat.clone()
        for kind in ("integer", "binary"):
            mask = d.kind_mask(kind)  # type: ignore[arg-type]
            if mask is None or not mask.any():
                continue
            mask = mask.to(flat.device)
            res = (d.resolution.to(flat) if kind == "integer"  # type: ignore[union-attr]
                   else (d.upper - d.lower).to(flat))  # type: ignore[operator]
            res = res.expand(flat.shape[1]) if res.dim() == 0 else res
            step = torch.trunc((flat - flat0) / res.clamp_min(1e-30)) * res
            out = torch.where(mask, flat0 + step, out)
        for g in d.one_hot_groups:
            out[:, list(g)] = flat0[:, list(g)]
        return out.reshape(x.shape)

    def _limit(self, x: Tensor) -> float:
        return self.eps * (1 + 1e-6) + 1e-7 if self.bounded else math.inf

    def contains(self, x_adv: Tensor, x: Tensor, *, atol: float = 1e-6) -> Tensor:
        """Per-sample bool ``(N,)``: ``x_adv`` is inside the ball around ``x`` (relative tolerance
        1e-6 on eps) and inside the domain, immutable and monotone constraints included."""
        self._check(x_adv, x)
        in_ball = norms.norm(x_adv - x, self.norm) <= self._limit(x) + (atol if self.norm != "l0"
                                                                         else 0.0)
        return in_ball & self.domain.contains(x_adv, x, atol=atol)

    def random_point(self, x: Tensor, generator: torch.Generator | None = None, *,
                     relax: bool = False) -> Tensor:
        """A random start: volume-uniform in the ball (:func:`advlab.norms.sample_ball`), then
        projected onto the domain (:meth:`project`). For ``eps = inf``, uniform in the domain's
        box of allowed perturbations, which must then be bounded."""
        if self.bounded:
            delta = norms.sample_ball(x, self.norm, self.eps, generator=generator)
        else:
            lo, hi = self.domain.delta_bounds(x)
            if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
                raise ValueError("ThreatModel.random_point: eps = inf needs a bounded domain")
            u = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=generator)
            delta = lo + u * (hi - lo)
        return self.project(x + delta, x, relax=relax)

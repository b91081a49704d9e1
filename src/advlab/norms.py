"""Lp geometry: norms, exact Euclidean projections, steepest-ascent directions, ball sampling.

This is the only place in advlab where any of this is written; every attack uses it. Everything
is batched over the first dimension (one ball per sample), follows the input's dtype and device,
and never loops over samples in Python.

Norm names are ``"linf"``, ``"l2"``, ``"l1"`` and ``"l0"``. A radius ``eps`` is a float or a
tensor of shape ``(N,)`` (one radius per sample); ``math.inf`` means "no ball". For ``"l0"`` the
radius is the number of coordinates that may change (rounded down).

Projections solve ``argmin_d ||d - z||_2`` subject to ``||d||_p <= eps`` and, when ``lower`` and
``upper`` are given, ``lower <= d <= upper`` (a box that must contain 0: the box of
perturbations that keep ``x + d`` in the domain, see :meth:`advlab.domain.Domain.delta_bounds`).
They are exact:

* L∞: a clamp (the ball is a box).
* L2 without a box: rescaling. With a box: the KKT point ``clip(s * z, lower, upper)``, with the
  scale ``s`` found by bisection (the norm is monotone in ``s``).
* L1 without a box: the sort-based projection onto the simplex of Duchi, Shalev-Shwartz, Singer
  and Chandra, "Efficient Projections onto the l1-Ball for Learning in High Dimensions", ICML
  2008, Fig. 1. With a box: ``clip(soft_threshold(z, tau), lower, upper)`` with ``tau`` found by
  bisection.
* L0: keep the ``k`` coordinates whose (clipped) value reduces the distance the most.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

Norm = Literal["linf", "l2", "l1", "l0"]
NORMS: tuple[Norm, ...] = get_args(Norm)
_TINY = 1e-12


def check_norm(p: str) -> Norm:
    """Return ``p`` if it names a norm, else raise ``ValueError``."""
    if p not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {p!r}")
    return p  # type: ignore[return-value]


def _flat(x: Tensor) -> Tensor:
    if x.dim() < 1:
        raise ValueError(f"expected a batch (N, *D), got a scalar of shape {tuple(x.shape)}")
    return x.flatten(1) if x.dim() > 1 else x.reshape(x.shape[0], 1)


def _radius(eps: float | Tensor, x: Tensor, p: Norm | None = None) -> Tensor:
    """Radius as an (N, 1) tensor on ``x``'s device and dtype (float64 for an L0 count, so that
    rounding down happens before any cast to a lower precision: 2.9999999 counts 2, not 3)."""
    dtype = torch.float64 if p == "l0" else x.dtype
    r = torch.as_tensor(eps, dtype=dtype, device=x.device)
    if r.dim() == 0:
        r = r.expand(x.shape[0])
    if r.shape != (x.shape[0],):
        raise ValueError(
            f"eps must be a scalar or have shape ({x.shape[0]},), got {tuple(r.shape)}")
    if torch.isnan(r).any() or (r < 0).any():
        raise ValueError(f"eps must be >= 0 and not NaN, got min {r.min().item()}")
    return r.unsqueeze(1)


def norm(x: Tensor, p: Norm) -> Tensor:
    """Per-sample Lp norm of a batch ``(N, *D)``, returned as ``(N,)``."""
    flat = _flat(x)
    check_norm(p)
    if p == "linf":
        return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(flat.shape[0])
    if p == "l2":
        return flat.norm(p=2, dim=1)
    if p == "l1":
        return flat.abs().sum(dim=1)
    return (flat != 0).sum(dim=1).to(x.dtype if x.is_floating_point() else torch.float32)


def dual(p: Norm) -> Norm:
    """Dual norm: L∞ ↔ L1, L2 ↔ L2 (used for distances to linear decision boundaries).

    L0 is not a norm and has no dual: ``ValueError``."""
    if check_norm(p) == "l0":
        raise ValueError("dual: L0 is not a norm and has no dual norm")
    return {"linf": "l1", "l1": "linf", "l2": "l2"}[p]  # type: ignore[return-value]


def project(delta: Tensor, p: Norm, eps: float | Tensor, *, lower: Tensor | None = None,
            upper: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """Exact Euclidean projection of each ``delta[i]`` onto ``{||d||_p <= eps_i} ∩ [lower, upper]``.

    Args:
        delta: perturbations ``(N, *D)``.
        p: the norm.
        eps: radius, a float or ``(N,)``; ``math.inf`` projects onto the box alone.
        lower, upper: optional box bounds broadcastable to ``delta``; the box must contain 0.
        out: optional tensor of ``delta``'s shape to write the result into (it may be ``delta``
            itself: L∞ then projects in place, without allocating).

    Returns:
        Tensor of ``delta``'s shape, dtype and device, inside the ball (to float rounding) and
        inside the box; ``out`` when given.
    """
    if out is not None:
        if out.shape != delta.shape:
            raise ValueError(f"project: out has shape {tuple(out.shape)}, delta "
                             f"{tuple(delta.shape)}")
        same = lower is None or (upper is not None and lower.dtype == upper.dtype == delta.dtype)
        if p == "linf" and isinstance(eps, (int, float)) and eps >= 0 and same:
            torch.clamp(delta, -eps, eps, out=out)  # the ball is a box: clamp in place
            if lower is not None:
                torch.clamp(out, lower, upper, out=out)
            return out
        return out.copy_(project(delta, p, eps, lower=lower, upper=upper))
    check_norm(p)
    if (lower is None) != (upper is None):
        raise ValueError("project: give both lower and upper, or neither")
    flat = _flat(delta)
    r = _radius(eps, flat, p)
    lo = hi = None
    if lower is not None and upper is not None:
        lo = torch.broadcast_to(lower, delta.shape).reshape(flat.shape).to(flat.dtype)
        hi = torch.broadcast_to(upper, delta.shape).reshape(flat.shape).to(flat.dtype)
    if p == "linf":
        out = torch.minimum(torch.maximum(flat, -r), r)
        if lo is not None:
            out = torch.minimum(torch.maximum(out, lo), hi)  # type: ignore[arg-type]
    elif p == "l0":
        out = _project_l0(flat, r, lo, hi)
    elif lo is None:
        out = _project_l2(flat, r) if p == "l2" else _project_l1(flat, r)
    else:
        out = _project_box(flat, r, lo, hi, p)  # type: ignore[arg-type]
    return out.reshape(delta.shape)


def _project_l2(flat: Tensor, r: Tensor) -> Tensor:
    n = flat.norm(p=2, dim=1, keepdim=True)
    scale = torch.where(n > r, r / n.clamp_min(_TINY), torch.ones_like(n))
    return flat * scale


def _project_l1(flat: Tensor, r: Tensor) -> Tensor:
    """Duchi et al. 2008, Fig. 1: soft-threshold at the theta that puts |z| on the simplex."""
    a = flat.abs()
    inside = a.sum(dim=1, keepdim=True) <= r
    u, _ = torch.sort(a, dim=1, descending=True)
    css = u.cumsum(dim=1)
    j = torch.arange(1, a.shape[1] + 1, device=a.device, dtype=a.dtype)
    finite_r = torch.where(torch.isinf(r), torch.zeros_like(r), r)
    cond = u * j > css - finite_r  # u_j - (css_j - eps)/j > 0
    rho = cond.sum(dim=1, keepdim=True).clamp_min(1)  # cond is a prefix: count = last index
    theta = (css.gather(1, rho - 1) - finite_r) / rho.to(a.dtype)
    out = flat.sign() * (a - theta.clamp_min(0)).clamp_min(0)
    out = torch.where(inside, flat, out)
    return _rescale_into(out, r, "l1")


def _project_box(flat: Tensor, r: Tensor, lo: Tensor, hi: Tensor, p: Norm) -> Tensor:
    """L2 or L1 ball ∩ box, exactly, by sorting the breakpoints of the KKT path.

    The KKT conditions give ``d(s) = clip(s * z, lo, hi)`` for L2 and
    ``d(tau) = clip(soft_threshold(z, tau), lo, hi)`` for L1; the norm of ``d`` is monotone and
    piecewise simple between breakpoints, so one sort locates the segment where it equals eps and
    a closed form solves it there (the Duchi et al. construction, extended to the box).
    """
    work = torch.float64 if flat.dtype != torch.float64 else flat.dtype
    z, lo64, hi64, r64 = flat.to(work), lo.to(work), hi.to(work), r.to(work)
    if p == "l2":
        out = _l2_box(z, lo64, hi64, r64)
    else:
        out = _l1_box(z, lo64, hi64, r64)
    return _rescale_into(out.to(flat.dtype), r, p)


def _l2_box(z: Tensor, lo: Tensor, hi: Tensor, r: Tensor) -> Tensor:
    sat = torch.minimum(torch.maximum(z, lo), hi)  # value a coordinate keeps once clipped
    s_i = torch.where(z != 0, (sat / torch.where(z != 0, z, 1)).clamp(0, 1), torch.ones_like(z))
    order = s_i.argsort(dim=1)
    s_sorted = s_i.gather(1, order)
    a = sat.square().gather(1, order).cumsum(dim=1)  # energy of the saturated coordinates
    # energy of the coordinates still free after each breakpoint, as a suffix sum (not
    # total - prefix, whose rounding residue would leave a tiny b > 0 once everything saturated)
    zs = z.square().gather(1, order)
    b = torch.cat([zs.flip(1).cumsum(dim=1).flip(1)[:, 1:], torch.zeros_like(r)], dim=1)
    f = a + s_sorted.square() * b  # ||d(s)||^2 at each breakpoint, nondecreasing
    m = (f <= r.square()).sum(dim=1, keepdim=True)
    a_m = torch.where(m > 0, a.gather(1, (m - 1).clamp_min(0)), torch.zeros_like(r))
    b_total = zs.sum(1, keepdim=True)
    b_m = torch.where(m > 0, b.gather(1, (m - 1).clamp_min(0)), b_total)
    # exact division: a genuinely small free energy (tiny z) must not be clamped to _TINY
    s = torch.where(b_m > 0, ((r.square() - a_m).clamp_min(0)
                              / torch.where(b_m > 0, b_m, torch.ones_like(b_m))).sqrt(),
                    torch.ones_like(r))
    s = s.clamp(max=1)
    return torch.minimum(torch.maximum(z * s, lo), hi)


def _l1_box(z: Tensor, lo: Tensor, hi: Tensor, r: Tensor) -> Tensor:
    a = z.abs()
    cap = torch.where(z > 0, hi, -lo).clamp_min(0)
    cap = torch.where(z != 0, torch.minimum(cap, a), torch.zeros_like(a))
    f0 = cap.sum(dim=1, keepdim=True)  # norm at tau = 0 (the box clip of z)
    points = torch.cat([a - cap, a], dim=1)  # where a coordinate leaves its cap; where it hits 0
    events = torch.cat([-torch.ones_like(a), torch.ones_like(a)], dim=1)  # slope changes
    order = points.argsort(dim=1)
    pts, slope = points.gather(1, order), events.gather(1, order).cumsum(dim=1)
    steps = slope[:, :-1] * pts.diff(dim=1)
    f = f0 + torch.cat([torch.zeros_like(f0), steps.cumsum(dim=1)], dim=1)  # nonincreasing
    m = (f > r).sum(dim=1, keepdim=True).clamp(1, pts.shape[1])
    p_m, f_m, s_m = pts.gather(1, m - 1), f.gather(1, m - 1), slope.gather(1, m - 1)
    tau = p_m + (f_m - r).clamp_min(0) / (-s_m).clamp_min(1)
    tau = torch.where(f0 <= r, torch.zeros_like(tau), tau)
    return z.sign() * torch.minimum((a - tau).clamp_min(0), cap)


def _rescale_into(out: Tensor, r: Tensor, p: Norm) -> Tensor:
    """Guard against float rounding: shrink (towards 0, so the box still holds) onto the ball."""
    n = norm(out, p).unsqueeze(1)
    return torch.where(n > r, out * (r / n.clamp_min(_TINY)), out)


def _project_l0(flat: Tensor, r: Tensor, lo: Tensor | None, hi: Tensor | None) -> Tensor:
    kept = flat if lo is None else torch.minimum(torch.maximum(flat, lo), hi)  # type: ignore[arg-type]
    gain = flat.square() - (flat - kept).square()  # distance saved by keeping the coordinate
    d = flat.shape[1]
    k = torch.where(torch.isinf(r), torch.full_like(r, d), torch.floor(r)).clamp(0, d).long()
    if d == 0:
        return kept
    rank = gain.argsort(dim=1, descending=True).argsort(dim=1)
    return torch.where(rank < k, kept, torch.zeros_like(kept))


def steepest_ascent(grad: Tensor, p: Norm, *, k: int = 1) -> Tensor:
    """Unit-norm direction ``d`` maximising ``<grad, d>`` over the unit Lp ball.

    L∞: ``sign(grad)``; L2: ``grad / ||grad||_2``; L1: the sparse step ``sign(grad_i) / k`` on the
    ``k`` coordinates of largest ``|grad_i|`` (``k = 1`` attains the dual norm ``||grad||_∞``;
    larger ``k`` spreads the step as in Tramèr and Boneh, NeurIPS 2019). A zero gradient gives a
    zero direction. L0 has no steepest-ascent direction and raises ``ValueError``.
    """
    check_norm(p)
    flat = _flat(grad)
    if p == "linf":
        return grad.sign()
    if p == "l2":
        return (flat / flat.norm(p=2, dim=1, keepdim=True).clamp_min(_TINY)).reshape(grad.shape)
    if p == "l0":
        raise ValueError("steepest_ascent: L0 has no steepest-ascent direction; use a "
                         "coordinate-selection attack (JSMA) or p='l1'")
    if not 1 <= k <= flat.shape[1]:
        raise ValueError(f"steepest_ascent: k must be in [1, {flat.shape[1]}], got {k}")
    idx = flat.abs().topk(k, dim=1).indices
    out = torch.zeros_like(flat).scatter_(1, idx, flat.gather(1, idx).sign() / k)
    return out.reshape(grad.shape)


def sample_ball(x: Tensor, p: Norm, eps: float | Tensor, *,
                generator: torch.Generator | None = None) -> Tensor:
    """Perturbations drawn uniformly (by volume) from the Lp ball of radius ``eps``, one per sample.

    L∞: uniform in the cube. L2: a Gaussian direction times ``eps * U^(1/d)`` (a radius drawn
    uniformly would crowd the centre). L1: ``eps * signs * E_{1..d} / sum(E_{1..d+1})`` with
    ``E_i ~ Exp(1)``, uniform on the L1 ball (Barthe, Guédon, Mendelson, Naor, Ann. Probab. 2005).
    L0 has no volume: ``floor(eps)`` coordinates chosen uniformly get values uniform in [-1, 1].

    Returns a tensor of ``x``'s shape, dtype and device. ``eps`` must be finite.
    """
    check_norm(p)
    flat = _flat(x)
    r = _radius(eps, flat, p)
    if torch.isinf(r).any():
        raise ValueError("sample_ball: eps must be finite (an infinite ball has no uniform law)")
    n, d = flat.shape
    kw = {"dtype": flat.dtype, "device": flat.device, "generator": generator}
    if p == "linf":
        out = (torch.rand(n, d, **kw) * 2 - 1) * r  # type: ignore[arg-type]
    elif p == "l2":
        g = torch.randn(n, d, **kw)  # type: ignore[arg-type]
        u = torch.rand(n, 1, **kw)  # type: ignore[arg-type]
        out = g / g.norm(dim=1, keepdim=True).clamp_min(_TINY) * r * u.pow(1.0 / max(d, 1))
    elif p == "l1":
        e = torch.empty(n, d + 1, dtype=flat.dtype, device=flat.device).exponential_(
            generator=generator)
        signs = torch.randint(0, 2, (n, d), **kw).mul_(2).sub_(1)  # type: ignore[arg-type]
        out = signs * e[:, :d] / e.sum(dim=1, keepdim=True) * r
    else:
        k = torch.floor(r).clamp(0, d).long()
        rank = torch.rand(n, d, **kw).argsort(dim=1).argsort(dim=1)  # type: ignore[arg-type]
        values = torch.rand(n, d, **kw) * 2 - 1  # type: ignore[arg-type]
        out = torch.where(rank < k, values, torch.zeros_like(values))
    return out.reshape(x.shape)


def finite(eps: float | Tensor) -> bool:
    """True when every radius is finite."""
    if isinstance(eps, Tensor):
        return bool(torch.isfinite(eps).all())
    return math.isfinite(eps)

"""FAB, the fast adaptive boundary attack of Croce and Hein: a minimal-norm attack, L∞, L2, L1.

Conventions: :mod:`advlab.attacks.common`. Registered as ``fab`` (untargeted, or targeted with
``target=``) and ``fab-t`` (the version AutoAttack runs: the hyperplanes of the top runner-up
classes in turn, any misclassification counting as a success).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from advlab import norms
from advlab.attacks.common import Model, check_inputs, expand_as_batch, index_or_none
from advlab.attacks.deepfool import _class_gradients as class_gradients  # one batched Jacobian
from advlab.losses import is_success
from advlab.models import batching
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel

_BIG = 1e30  # stands for an infinite room in the box (unbounded features)


def fab(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
        target: Tensor | None = None, n_targets: int = 0, steps: int = 100, restarts: int = 1,
        alpha_max: float = 0.1, eta: float = 1.05, beta: float = 0.9, search_steps: int = 10,
        generator: torch.Generator | None = None) -> Tensor:
    """FAB (Croce and Hein, ICML 2020, "Minimally distorted adversarial examples with a fast
    adaptive boundary attack", Algorithm 1 and §3; arXiv:1907.02044).

    Each step linearises the classifier at ``x_i`` and takes the hyperplane ``pi_s`` of the
    closest class ``s`` (distance ``|f_s - f_y| / ||grad (f_s - f_y)||_q``, q dual to p; with
    ``target``, ``s = t``). It projects both ``x_i`` and ``x_orig`` onto ``pi_s ∩ box`` (the exact
    Lp projections of the paper's §3.1, :func:`_hyperplane_box`), giving ``d_i`` and ``d_o``, and
    moves to ``proj_box((1 - a)(x_i + eta d_i) + a (x_orig + eta d_o))`` with ``a =
    min(|d_i| / (|d_i| + |d_o|), alpha_max)``. An adversarial iterate is kept if smaller than the
    best one, then pulled back, ``x_i <- (1 - beta) x_orig + beta x_i``. Restarts start from a
    uniform point of the ball of radius ``min(best, eps) / 2``; a final bisection of
    ``search_steps`` forwards on the segment from ``x_orig`` to the best point shortens it.
    ``n_targets = k > 0`` (without ``target``) runs the targeted hyperplanes of the ``k``
    runner-up classes one after the other on the samples not yet fooled within ``eps`` (FAB-T).

    Minimal-norm: ``eps = inf`` minimises fully; a finite ``eps`` lets a sample stop once its
    best point is within it. Args: alpha_max, eta, beta: the paper's (0.1, 1.05, 0.9). Others:
    see :mod:`advlab.attacks.common`.

    Returns:
        The smallest successful point found (not clipped to ``eps``), in the domain; ``x``
        where none was found.
    """
    name = "fab-t" if n_targets else "fab"
    check_inputs(name, model, x, y, threat, target)
    if threat.norm not in ("linf", "l2", "l1"):
        raise ValueError(f"{name}: norm must be 'linf', 'l2' or 'l1', got {threat.norm!r}")
    if steps < 1 or restarts < 1 or n_targets < 0 or search_steps < 0 or \
            not (0 <= alpha_max <= 1 and eta >= 1 and 0 < beta < 1):
        raise ValueError(f"{name}: need steps, restarts >= 1, n_targets, search_steps >= 0, "
                         f"alpha_max in [0, 1], eta >= 1, beta in (0, 1); got {steps}, "
                         f"{restarts}, {n_targets}, {search_steps}, {alpha_max}, {eta}, {beta}")
    x = x.detach()
    with eval_mode(model):
        with torch.no_grad():
            logits = batching.forward(model, x)
        check_logits(logits, where=f"{name}: model")
        out = x.clone()
        best = torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
        best[is_success(logits, y, target)] = 0.0  # already fooled: x itself
        if target is not None or not n_targets:
            plan = [(target, target)]
        else:  # FAB-T: the hyperplanes of the runner-up classes, any misclassification counts
            ranked = logits.scatter(1, y[:, None], -math.inf).argsort(1, descending=True)
            plan = [(ranked[:, r], None) for r in range(min(n_targets, logits.shape[1] - 1))]
        knobs = (steps, alpha_max, eta, beta, logits.shape[1])
        for plane, goal in plan:
            for r in range(restarts):
                idx = (best > threat.eps).nonzero()[:, 0] if threat.bounded else \
                    (best > 0).nonzero()[:, 0]
                if idx.numel() == 0:
                    break
                x_i, y_i = x[idx], y[idx]
                start = x_i if r == 0 else _random_start(x_i, threat, best[idx], generator)
                if start is None:
                    break
                adv, size = _run(model, x_i, y_i, index_or_none(plane, idx),
                                 index_or_none(goal, idx), threat, start, knobs)
                adv, size = _final(model, adv, size, x_i, y_i, index_or_none(goal, idx), threat,
                                   search_steps)
                better = size < best[idx]
                out[idx] = torch.where(expand_as_batch(better, adv), adv, out[idx])
                best[idx] = torch.where(better, size, best[idx])
    return out.detach()


def _random_start(x: Tensor, threat: ThreatModel, best: Tensor,
                  generator: torch.Generator | None) -> Tensor | None:
    radius = torch.minimum(best, torch.full_like(best, threat.eps)) / 2
    if not bool(torch.isfinite(radius).any()):
        return None  # nothing found and no eps: no scale for a random start
    radius = torch.where(torch.isfinite(radius), radius, torch.zeros_like(radius))
    delta = norms.sample_ball(x, threat.norm, radius, generator=generator)
    return threat.project(x + delta, x, relax=True)


def _run(model: Model, x0: Tensor, y: Tensor, plane: Tensor | None, goal: Tensor | None,
         threat: ThreatModel, start: Tensor, knobs: tuple[int, float, float, float, int]
         ) -> tuple[Tensor, Tensor]:
    """One FAB run: per sample, the smallest adversarial iterate and its norm (``inf`` if none).
    The batch is compacted as samples get below ``threat.eps``."""
    steps, alpha_max, eta, beta, n_classes = knobs
    n, p = x0.shape[0], threat.norm
    out, size = x0.clone(), torch.full((n,), math.inf, dtype=x0.dtype, device=x0.device)
    lo, hi = threat.delta_bounds(x0)
    classes = plane[:, None] if plane is not None else \
        torch.arange(n_classes, device=x0.device).expand(n, -1)
    s = {"x": start, "x0": x0, "y": y, "lo": lo, "hi": hi, "c": classes,
         "idx": torch.arange(n, device=x0.device)}
    if goal is not None:
        s["goal"] = goal
    logits, grads = class_gradients(model, start, classes, y)
    for it in range(steps):
        x_i, xa = s["x"], s["x0"]
        f = logits.gather(1, s["c"]) - logits.gather(1, s["y"][:, None])
        w = grads.flatten(2)
        if plane is None:  # the closest linearised boundary
            dual = norms.norm(w.reshape(-1, w.shape[2]), norms.dual(p)).reshape(f.shape)
            dist = f.abs() / dual.clamp_min(1e-12)
            dist = dist.masked_fill(s["c"] == s["y"][:, None], math.inf)
            pick = dist.argmin(1)[:, None]
            f, w = f.gather(1, pick), w.gather(1, pick[:, :, None].expand(-1, 1, w.shape[2]))
        f, w = f[:, 0], w[:, 0]
        delta = (x_i - xa).flatten(1)
        lo_f, hi_f = s["lo"].flatten(1), s["hi"].flatten(1)
        d_i = _hyperplane_box(w, -f, lo_f - delta, hi_f - delta, p)
        d_o = _hyperplane_box(w, -(f - (w * delta).sum(1)), lo_f, hi_f, p)
        n_i, n_o = norms.norm(d_i, p).clamp_min(1e-12), norms.norm(d_o, p).clamp_min(1e-12)
        a = (n_i / (n_i + n_o)).clamp(max=alpha_max)[:, None]
        new = (1 - a) * (delta + eta * d_i) + a * (eta * d_o)
        new = torch.minimum(torch.maximum(new, lo_f), hi_f)
        s["x"] = xa + new.reshape(xa.shape)
        logits, grads = class_gradients(model, s["x"], s["c"], s["y"])
        hit = is_success(logits, s["y"], s.get("goal"))
        if bool(hit.any()):
            h = hit.nonzero()[:, 0]
            found, scale = s["x"][h], torch.full_like(h, beta, dtype=xa.dtype)
            if threat.domain.is_discrete:  # judged by the nearest valid point
                found = threat.repair(found, xa[h])
                with torch.no_grad():
                    ok = is_success(batching.forward(model, found), s["y"][h],
                                    index_or_none(s.get("goal"), h))
                scale = torch.where(ok, scale, 1 / beta)  # undone by the repair: go further
                found, hv = found[ok], h[ok]
            else:
                hv = h
            r = norms.norm(found - xa[hv], p)
            gi = s["idx"][hv]
            smaller = r < size[gi]
            out[gi[smaller]], size[gi[smaller]] = found[smaller], r[smaller]
            back = (expand_as_batch(scale, found) * (s["x"][h] - xa[h])).flatten(1)
            back = torch.minimum(torch.maximum(back, s["lo"][h].flatten(1)), s["hi"][h].flatten(1))
            s["x"][h] = xa[h] + back.reshape(xa[h].shape)  # the backward step
            if it < steps - 1:
                logits[h], grads[h] = class_gradients(model, s["x"][h], s["c"][h], s["y"][h])
            done = size[s["idx"]] <= threat.eps
            if threat.bounded and bool(done.any()):
                keep = ~done
                s = {k: v[keep] for k, v in s.items()}
                logits, grads = logits[keep], grads[keep]
                if s["idx"].numel() == 0:
                    break
    return out, size


def _final(model: Model, adv: Tensor, size: Tensor, x0: Tensor, y: Tensor, goal: Tensor | None,
           threat: ThreatModel, search_steps: int) -> tuple[Tensor, Tensor]:
    """The final search: bisection on ``[x0, adv]`` for the point closest to ``x0`` that is
    still adversarial (on discrete domains: whose nearest valid point is, and that point)."""
    rows = torch.isfinite(size).nonzero()[:, 0]
    x_f, span, y_f, g_f = x0[rows], adv[rows] - x0[rows], y[rows], index_or_none(goal, rows)
    kept = adv[rows]
    hi = torch.ones(rows.shape[0], dtype=size.dtype, device=size.device)
    lo = torch.zeros_like(hi)
    for _ in range(search_steps if rows.numel() else 0):
        mid = (lo + hi) / 2
        cand = x_f + expand_as_batch(mid, x_f) * span
        if threat.domain.is_discrete:
            cand = threat.repair(cand, x_f)
        with torch.no_grad():
            ok = is_success(batching.forward(model, cand), y_f, g_f)
        kept = torch.where(expand_as_batch(ok, cand), cand, kept)
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
    out, size = x0.clone(), size.clone()
    out[rows] = kept
    size[rows] = norms.norm(kept - x_f, threat.norm)
    return out, size


def _hyperplane_box(w: Tensor, c: Tensor, lo: Tensor, hi: Tensor, p: str) -> Tensor:
    """Exact ``argmin ||d||_p`` subject to ``<w, d> = c`` and ``lo <= d <= hi`` (``lo <= 0 <=
    hi``), batched over rows (FAB §3.1: the projection onto a hyperplane ∩ box). Where the
    hyperplane is out of the box's reach, the box point closest to it in that direction.

    Along the direction ``sign(c w_i)`` each coordinate has room ``cap_i``. L∞: ``d_i =
    min(t, cap_i)``, L2: ``d_i = min(lam |w_i|, cap_i)`` (KKT), with the scalar found exactly on
    the sorted breakpoints of the piecewise-linear ``<w, d>``; L1: the coordinates of largest
    ``|w_i|`` filled to their room first (a fractional knapsack).
    """
    work = torch.float64
    sign = torch.where(c[:, None] >= 0, 1.0, -1.0).to(work) * w.to(work).sign()
    a = w.to(work).abs()
    room = torch.where(sign > 0, hi.to(work), -lo.to(work)).clamp(0, _BIG)
    room = torch.where(a > 0, room, torch.zeros_like(room))
    need = c.to(work).abs()[:, None]
    if p == "l1":
        order = a.argsort(1, descending=True)
        a_s, room_s = a.gather(1, order), room.gather(1, order)
        filled = (a_s * room_s).cumsum(1)
        before = filled - a_s * room_s
        part = ((need - before) / a_s.clamp_min(1e-300)).clamp(min=0)
        d_s = torch.minimum(room_s, part)
        d_s = torch.where(before >= need, torch.zeros_like(d_s), d_s)
        d = torch.zeros_like(d_s).scatter(1, order, d_s)
    else:
        slope = torch.ones_like(a) if p == "linf" else a
        tau = torch.where(slope > 0, room / slope.clamp_min(1e-300), torch.zeros_like(room))
        order = tau.argsort(1)
        tau_s, a_s, s_s, room_s = (t.gather(1, order) for t in (tau, a, slope, room))
        reached = (a_s * room_s).cumsum(1)  # sum of a_j room_j over saturated coordinates
        rest = (a_s * s_s).flip(1).cumsum(1).flip(1) - a_s * s_s  # slope left after each one
        level = reached + tau_s * rest  # <w, d> at each breakpoint, nondecreasing
        m = (level < need).sum(1, keepdim=True)
        cols = (m - 1).clamp_min(0)
        base = torch.where(m > 0, reached.gather(1, cols), torch.zeros_like(need))
        left = torch.where(m > 0, rest.gather(1, cols), (a * slope).sum(1, keepdim=True))
        t = (need - base) / left.clamp_min(1e-300)
        t = torch.where(m >= a.shape[1], torch.full_like(t, math.inf), t)
        d = torch.where(slope > 0, torch.minimum(t * slope, room), torch.zeros_like(room))
    return (sign * d).to(w.dtype)

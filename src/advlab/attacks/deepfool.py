"""DeepFool, multi-class, in L2 and L∞ (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016).

Conventions: :mod:`advlab.attacks.common`. DeepFool is a minimal-norm attack: it accepts
``eps = inf`` and returns the smallest perturbation it finds, not clipped to ``eps``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from advlab.attacks.common import (
    Model,
    check_inputs,
    expand_as_batch,
    movable,
    repaired_success,
)
from advlab.losses import is_success
from advlab.models import batching
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel

_CROSS = 1e-5  # relative slack so a linearised step lands just past the boundary, not on it
_STALL = 0.2  # a paper step keeping less than this share of its linearised progress has stalled
_FINISH = 0.1  # below this share of the first linearised distance, finish with the exact step
_FLOOR = 1e-3  # shortest step, as a share of the first linearised distance (float resolution)


def deepfool(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
             steps: int = 50, overshoot: float = 0.02, candidates: int = 10) -> Tensor:
    """DeepFool (Moosavi-Dezfooli, Fawzi, Frossard, "DeepFool: a simple and accurate method to
    fool deep neural networks", CVPR 2016, Algorithm 2; arXiv:1511.04599).

    Each iteration linearises the classifier at the current point ``x_i`` and steps to the
    nearest linearised boundary among the ``candidates`` classes with the largest clean logits:
    with ``f_k' = f_k - f_y`` and ``w_k = grad f_k'`` at ``x_i``,
    ``l = argmin_k |f_k'| / ||w_k||_q`` and the step is ``r_i = |f_l'| / ||w_l||_2^2 * w_l``
    (L2) or ``|f_l'| / ||w_l||_1 * sign(w_l)`` (L∞, eq. 9 with q = 1). The overshoot multiplies
    the *total* perturbation, as in the paper: ``x_{i+1} = x + (1 + overshoot) * sum_j r_j``.
    Each sample stops as soon as its label flips.

    Box handling (the paper has none). Every iterate is clipped into ``threat.domain``
    (:meth:`Domain.clip`), and the total is reset to what the domain kept, so a later step can
    undo a clipped coordinate. Features that cannot move at all (immutable ones) are left out of
    the input space. The class ``l`` is the nearest in the allowed directions (``w_k`` masked by
    :func:`~advlab.attacks.common.movable`: no coordinate at a bound pushed outwards), which is
    the exact box distance of a linear model. The step towards it is the paper's, from the full
    gradient at the clipped point, then clipped: where coordinates sit at a bound the clip
    shortens it, and the sample approaches the boundary in shorter steps that re-linearise more
    often, which on ReLU networks (whose boundary is usually nearer than a linearisation far from
    it predicts) ends closer to the boundary than one long step. Clipped steps only approach the
    linearised boundary geometrically and never cross it, so a sample takes the exact
    linearised step within the allowed directions (the masked ``w_l``) instead when its paper
    step stalls (the clip keeps less than 20 % of its linearised progress), once its distance
    is below 10 % of its first one, and on its last iteration. In an unbounded domain both
    steps are the paper's. Steps are at least 0.1 % of the first distance long, so float
    rounding cannot hold a sample on the boundary. Integer, binary and one-hot features are
    relaxed while iterating and repaired at the end; a sample whose repair undoes the success
    keeps iterating from its relaxed point, with steps at least ``overshoot`` times its first
    distance long, so that it moves further past the boundary.

    Args:
        steps: maximum iterations per sample. overshoot: the paper's eta (0.02).
        candidates: number of top-logit classes considered (the paper's implementation uses 10).
        Others: see :mod:`advlab.attacks.common`; ``threat.norm`` is ``"l2"`` or ``"linf"``.

    Returns:
        Each sample's first successful (repaired) point, ``x`` where DeepFool failed.
    """
    check_inputs("deepfool", model, x, y, threat, None)
    if threat.norm not in ("l2", "linf"):
        raise ValueError(f"deepfool: norm must be 'l2' or 'linf', got {threat.norm!r}")
    if steps < 1 or overshoot < 0 or candidates < 2:
        raise ValueError(f"deepfool: need steps >= 1, overshoot >= 0, candidates >= 2; got "
                         f"{steps}, {overshoot}, {candidates}")
    x = x.detach()
    out = x.clone()
    norm = threat.norm
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, where="deepfool: model")
        k = min(candidates, clean.shape[1])
        classes = clean.topk(k, dim=1).indices
        lo, hi = threat.domain.delta_bounds(x)
        fixed = lo == hi  # immutable features: not part of the input space
        has_fixed = bool(fixed.any())
        active = torch.arange(len(x), device=x.device)
        r_total = torch.zeros_like(x)
        x_adv = x
        first: Tensor | None = None  # each sample's first linearised distance
        undone = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # repair undid a success
        for it in range(steps + 1):
            logits, grads = _class_gradients(model, x_adv, classes[active], y[active])
            hit = is_success(logits, y[active], None)
            if bool(hit.any()):
                h = hit.nonzero()[:, 0]
                valid, ok = repaired_success(model, x_adv[h], x[active[h]], y[active[h]],
                                             threat, None)
                out[active[h[ok]]] = valid[ok]
                hit[h[~ok]] = False  # the repair undid it: keep searching from the relaxed point
                undone[active[h[~ok]]] = True
            keep = ~hit
            active, x_adv, r_total = active[keep], x_adv[keep], r_total[keep]
            logits, grads = logits[keep], grads[keep]
            if first is not None:
                first = first[keep]
            if active.numel() == 0 or it == steps:
                break
            x0, lo_a, hi_a, cls, y_a = x[active], lo[active], hi[active], classes[active], y[active]
            if has_fixed:
                grads = grads.masked_fill(fixed[active].unsqueeze(1), 0.0)
            # the nearest boundary reachable in the allowed directions picks the class l
            w_m = movable(grads, (x_adv - x0).unsqueeze(1), lo_a.unsqueeze(1), hi_a.unsqueeze(1))
            dist, f_l, best = _nearest(logits, w_m, cls, y_a, norm)
            if first is None:
                first = torch.where(torch.isfinite(dist), dist, torch.zeros_like(dist))
            # past the relaxed boundary, a step of the overshoot pushes on towards a valid success
            floor = torch.where(undone[active], max(overshoot, _FLOOR), _FLOOR) * first
            rows = torch.arange(len(active), device=x.device)
            w = grads[rows, best].flatten(1)
            r_full = _step(f_l, w, norm, floor).reshape(x0.shape)
            r_exact = _step(f_l, w_m[rows, best].flatten(1), norm, floor).reshape(x0.shape)
            # the paper's step, clipped: how much of its linearised progress did the box keep?
            tried = threat.domain.clip(x0 + (1 + overshoot) * (r_total + r_full), x0)
            wanted = (1 + overshoot) * (w * r_full.flatten(1)).sum(1)
            kept = (w * (tried - x_adv).flatten(1)).sum(1) / wanted.clamp_min(1e-30)
            exact = (kept < _STALL) | (dist <= _FINISH * first) | torch.isinf(dist)
            if it == steps - 1:
                exact = torch.ones_like(exact)
            r_total = r_total + torch.where(expand_as_batch(exact, x0), r_exact, r_full)
            x_adv = threat.domain.clip(x0 + (1 + overshoot) * r_total, x0)
            r_total = (x_adv - x0) / (1 + overshoot)  # what the domain kept, so steps can undo it
    return out.detach()


def _class_gradients(model: Model, x: Tensor, classes: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Logits ``(n, C)`` and the gradients of ``f_k - f_y`` for each candidate k: ``(n, K, *D)``,
    in one batched backward pass (per row chunk: :func:`advlab.models.batching.map_rows`; the
    ``K`` backward vectors keep ``K`` gradients per activation)."""

    def jacobian(xs: Tensor, cs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            x_req = xs.detach().requires_grad_(True)
            logits = model(x_req)
            diff = logits.gather(1, cs) - logits.gather(1, ys[:, None])  # (n, K)
            k = cs.shape[1]
            eye = torch.eye(k, dtype=diff.dtype, device=diff.device)[:, None, :]
            (grads,) = torch.autograd.grad(diff, x_req, grad_outputs=eye.expand(k, *diff.shape),
                                           is_grads_batched=True)
        return logits.detach(), grads.detach().movedim(0, 1)

    return batching.map_rows(model, jacobian, x, classes, y,  # type: ignore[return-value]
                             factor=classes.shape[1])


def _nearest(logits: Tensor, grads: Tensor, classes: Tensor, y: Tensor,
             norm: str) -> tuple[Tensor, Tensor, Tensor]:
    """The nearest linearised boundary among the candidates (Algorithm 2, line 6 and eq. 9):
    ``l = argmin_k |f_k'| / ||w_k||_q``. Returns, each ``(n,)``, that distance (``inf`` where no
    candidate has a gradient), the gap ``|f_l'|`` and the candidate index ``l``."""
    n, k = classes.shape
    f = (logits.gather(1, classes) - logits.gather(1, y[:, None])).abs()  # (n, K)
    w = grads.reshape(n, k, -1)
    dual = w.norm(p=2, dim=2) if norm == "l2" else w.abs().sum(dim=2)
    dist = f / dual.clamp_min(1e-12)
    dist = dist.masked_fill((classes == y[:, None]) | (dual == 0), float("inf"))
    best = dist.argmin(dim=1)[:, None]
    return dist.gather(1, best)[:, 0], f.gather(1, best)[:, 0], best[:, 0]


def _step(f: Tensor, w: Tensor, norm: str, floor: Tensor) -> Tensor:
    """The linearised minimal step ``(n, D)`` along ``w`` closing the gap ``f`` (eq. 8), just
    past the boundary and at least ``floor`` long in the attack's norm; zero where ``w = 0``."""
    dual = (w.norm(p=2, dim=1) if norm == "l2" else w.abs().sum(dim=1))[:, None]
    dual_c = dual.clamp_min(1e-12)
    scale = torch.maximum(f[:, None], floor[:, None] * dual_c) * (1 + _CROSS) + 1e-12
    r = scale / dual_c.square() * w if norm == "l2" else scale / dual_c * w.sign()
    return torch.where(dual == 0, torch.zeros_like(r), r)

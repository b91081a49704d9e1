"""DeepFool, multi-class, in L2 and L∞ (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016).

Conventions: :mod:`advlab.attacks.common`. DeepFool is a minimal-norm attack: it accepts
``eps = inf`` and returns the smallest perturbation it finds, not clipped to ``eps``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from advlab.attacks.common import Model, check_inputs, movable, repaired_success
from advlab.losses import is_success
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel

_CROSS = 1e-5  # relative slack so a linearised step lands just past the boundary, not on it


def deepfool(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
             steps: int = 50, overshoot: float = 0.02, candidates: int = 10) -> Tensor:
    """DeepFool (Moosavi-Dezfooli et al., CVPR 2016, Algorithm 2; arXiv:1511.04599).

    Linearises the classifier at the current point and jumps to the nearest linearised boundary
    among the ``candidates`` classes with the largest clean logits: with
    ``w_k = grad(f_k - f_y)`` and ``f_k' = f_k - f_y``, the step is
    ``r = |f_l'| / ||w_l||_2^2 * w_l`` (L2) or ``|f_l'| / ||w_l||_1 * sign(w_l)`` (L∞, eq. 9
    with q = 1), ``l = argmin_k |f_k'| / ||w_k||_q``. The overshoot multiplies the *total*
    perturbation, ``x_i = x + (1 + overshoot) * sum r``, as in the paper. Each sample stops as
    soon as its label flips. Gradients are restricted to the coordinates the domain lets move.

    Args:
        steps: maximum iterations per sample. overshoot: the paper's eta (0.02).
        candidates: number of top-logit classes considered (the paper's implementation uses 10).
        Others: see :mod:`advlab.attacks.common`; ``threat.norm`` is ``"l2"`` or ``"linf"``.

    Returns:
        The perturbed point for each sample where DeepFool succeeded, ``x`` elsewhere.
    """
    check_inputs("deepfool", model, x, y, threat, None)
    if threat.norm not in ("l2", "linf"):
        raise ValueError(f"deepfool: norm must be 'l2' or 'linf', got {threat.norm!r}")
    if steps < 1 or overshoot < 0 or candidates < 2:
        raise ValueError(f"deepfool: need steps >= 1, overshoot >= 0, candidates >= 2; got "
                         f"{steps}, {overshoot}, {candidates}")
    x = x.detach()
    out = x.clone()
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, where="deepfool: model")
        k = min(candidates, clean.shape[1])
        classes = clean.topk(k, dim=1).indices
        lo, hi = threat.domain.delta_bounds(x)
        active = torch.arange(len(x), device=x.device)
        r_total = torch.zeros_like(x)
        x_adv = x
        for _ in range(steps + 1):
            logits, grads = _class_gradients(model, x_adv, classes[active], y[active])
            hit = is_success(logits, y[active], None)
            if bool(hit.any()):
                h = hit.nonzero()[:, 0]
                valid, ok = repaired_success(model, x_adv[h], x[active[h]], y[active[h]],
                                             threat, None)
                out[active[h[ok]]] = valid[ok]
                hit[h[~ok]] = False  # the repair undid it: keep searching from the relaxed point
            keep = ~hit
            active, x_adv, r_total = active[keep], x_adv[keep], r_total[keep]
            logits, grads = logits[keep], grads[keep]
            if active.numel() == 0:
                break
            x0, lo_a, hi_a = x[active], lo[active], hi[active]
            r_total = r_total + _step(logits, grads, classes[active], y[active], x_adv - x0,
                                      lo_a, hi_a, threat.norm)
            x_adv = threat.domain.clip(x0 + (1 + overshoot) * r_total, x0)
            r_total = (x_adv - x0) / (1 + overshoot)  # what the domain kept, so steps can undo it
    return out.detach()


def _class_gradients(model: Model, x: Tensor, classes: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Logits ``(n, C)`` and the gradients of ``f_k - f_y`` for each candidate k: ``(n, K, *D)``,
    in one batched backward pass."""
    with torch.enable_grad():
        x_req = x.detach().requires_grad_(True)
        logits = model(x_req)
        diff = logits.gather(1, classes) - logits.gather(1, y[:, None])  # (n, K)
        k = classes.shape[1]
        eye = torch.eye(k, dtype=diff.dtype, device=diff.device)[:, None, :].expand(k, *diff.shape)
        (grads,) = torch.autograd.grad(diff, x_req, grad_outputs=eye, is_grads_batched=True)
    return logits.detach(), grads.detach().movedim(0, 1)


def _step(logits: Tensor, grads: Tensor, classes: Tensor, y: Tensor, delta: Tensor, lo: Tensor,
          hi: Tensor, norm: str) -> Tensor:
    n, k = classes.shape
    f = (logits.gather(1, classes) - logits.gather(1, y[:, None])).abs()  # (n, K)
    w = movable(grads, delta.unsqueeze(1), lo.unsqueeze(1), hi.unsqueeze(1)).reshape(n, k, -1)
    dual = w.norm(p=2, dim=2) if norm == "l2" else w.abs().sum(dim=2)
    dist = f / dual.clamp_min(1e-12)
    dist = dist.masked_fill((classes == y[:, None]) | (dual == 0), float("inf"))
    best = dist.argmin(dim=1)
    w_l = w[torch.arange(n, device=w.device), best]  # (n, D)
    f_l = f.gather(1, best[:, None])  # (n, 1)
    dual_l = dual.gather(1, best[:, None]).clamp_min(1e-12)
    scale = f_l * (1 + _CROSS) + 1e-12
    r = scale / dual_l.square() * w_l if norm == "l2" else scale / dual_l * w_l.sign()
    r = torch.where(torch.isinf(dist.gather(1, best[:, None])), torch.zeros_like(r), r)
    return r.reshape(delta.shape)


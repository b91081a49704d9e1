"""JSMA, the Jacobian-based saliency map attack (Papernot et al., EuroS&P 2016).
Conventions: :mod:`advlab.attacks.common`. An L0 attack: it changes few features, by a lot.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from advlab.attacks.common import Model, check_inputs, repaired_success
from advlab.losses import is_success
from advlab.models import batching
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel

_PAIR_BUDGET = 1 << 24  # elements of the largest (n, chunk, D) pair-score block


def jsma(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
         target: Tensor | None = None, theta: float = 1.0, gamma: float = 0.1,
         use_logits: bool = False) -> Tensor:
    """JSMA (Papernot, McDaniel, Jha, Fredrikson, Celik, Swami, EuroS&P 2016, Algorithms 2–3 and
    eq. 10; arXiv:1511.07528).

    Each iteration takes the forward derivative of the outputs ``F`` (softmax probabilities;
    ``use_logits=True`` uses the logits ``Z``, the "JSMA-Z" of Carlini and Wagner 2017),
    ``alpha_p = dF_t/dx_p`` and ``beta_p = sum_{j != t} dF_j/dx_p``, and picks the pair
    ``(p, q)`` of the search domain maximising ``(alpha_p + alpha_q) * |beta_p + beta_q|`` among
    pairs with ``alpha_p + alpha_q > 0`` and ``beta_p + beta_q < 0`` (mirrored when
    ``theta < 0``); both features move by ``theta`` and leave the search domain, as do features
    the domain saturates or forbids (bounds, immutable, monotone). The pair search is exact:
    chunked over ``p`` for logits, so memory stays bounded; for probabilities ``beta = -alpha``
    and the best pair is the two largest ``alpha`` (O(D)). Each sample stops at success, when no
    pair qualifies, or when another pair would exceed ``gamma`` of the features (or
    ``threat.eps``).

    Args:
        target: target classes; without it, each sample targets its runner-up class.
        theta: change applied to each chosen feature (``+1`` saturates [0, 1] images).
        gamma: maximum fraction of features changed.
        use_logits: differentiate the logits instead of the probabilities.
        Others: see :mod:`advlab.attacks.common`; ``threat.norm`` must be ``"l0"``.

    Returns:
        ``x_adv`` with at most ``min(gamma * D, eps)`` changed features, inside the domain.
    """
    check_inputs("jsma", model, x, y, threat, target)
    if threat.norm != "l0":
        raise ValueError(f"jsma: norm must be 'l0', got {threat.norm!r}")
    if theta == 0 or not 0 < gamma <= 1:
        raise ValueError(f"jsma: need theta != 0 and 0 < gamma <= 1, got {theta}, {gamma}")
    x = x.detach()
    n, d = x.shape[0], math.prod(x.shape[1:])
    budget = min(math.floor(gamma * d), threat.eps)
    direction = 1.0 if theta > 0 else -1.0
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, where="jsma: model")
        if target is None:
            target = clean.scatter(1, y[:, None], -math.inf).argmax(dim=1)
        lo, hi = (b.reshape(n, d) for b in threat.domain.delta_bounds(x))
        out, delta = x.clone(), torch.zeros(n, d, dtype=x.dtype, device=x.device)
        used = torch.zeros(n, d, dtype=torch.bool, device=x.device)
        active = torch.arange(n, device=x.device)
        while active.numel() > 0:
            x_a = (x[active].reshape(-1, d) + delta[active]).reshape(-1, *x.shape[1:])
            logits, a, b = _forward_derivative(model, x_a, target[active], use_logits)
            hit = is_success(logits, y[active], target[active])
            if bool(hit.any()):
                h = hit.nonzero()[:, 0]
                valid, ok = repaired_success(model, x_a[h], x[active[h]], y[active[h]], threat,
                                             target[active[h]])
                out[active[h[ok]]] = valid[ok]
                hit[h[~ok]] = False
            room = (delta[active] != 0).sum(dim=1) + 2 <= budget
            free = ~used[active] & (hi[active] - delta[active] > 0 if direction > 0
                                    else delta[active] - lo[active] > 0)
            pick = _best_pair if use_logits else _best_pair_softmax
            p, q, found = pick(direction * a, direction * b, free)
            go = ~hit & room & found
            stop = ~hit & ~go
            if bool(stop.any()):  # out of budget or no useful pair: return the last point
                s = stop.nonzero()[:, 0]
                out[active[s]] = threat.project(x_a[s], x[active[s]])
            rows, p, q = active[go], p[go], q[go]
            for idx in (p, q):
                step = delta[rows, idx] + theta
                delta[rows, idx] = torch.minimum(torch.maximum(step, lo[rows, idx]), hi[rows, idx])
                used[rows, idx] = True
            active = rows
    return out.detach()


def _forward_derivative(model: Model, x: Tensor, target: Tensor,
                        use_logits: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Logits, ``dF_t/dx`` and ``sum_{j != t} dF_j/dx`` (flattened), in one batched backward
    (per row chunk: :func:`advlab.models.batching.map_rows`)."""

    def derivatives(xs: Tensor, ts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        with torch.enable_grad():
            x_req = xs.detach().requires_grad_(True)
            logits = model(x_req)
            f = logits if use_logits else logits.softmax(dim=1)
            outputs = torch.stack([f.gather(1, ts[:, None])[:, 0], f.sum(1)])
            eye = torch.eye(2, dtype=logits.dtype, device=logits.device)[:, :, None]
            eye = eye.expand(2, 2, xs.shape[0])
            (grads,) = torch.autograd.grad(outputs, x_req, grad_outputs=eye,
                                           is_grads_batched=True)
        g = grads.detach().flatten(2)
        return logits.detach(), g[0], g[1] - g[0]

    return batching.map_rows(model, derivatives, x, target, factor=2)  # type: ignore[return-value]


def _best_pair_softmax(alpha: Tensor, beta: Tensor,
                       free: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The exact pair search when ``F`` is a softmax: ``sum_j F_j = 1`` makes ``beta = -alpha``,
    so the score is ``(alpha_p + alpha_q)^2`` under ``alpha_p + alpha_q > 0``, maximised by the
    two largest free ``alpha``. O(D) instead of O(D^2)."""
    top = torch.where(free, alpha, torch.full_like(alpha, -math.inf)).topk(2, dim=1)
    found = torch.isfinite(top.values).all(dim=1) & (top.values.sum(dim=1) > 0)
    return top.indices[:, 0], top.indices[:, 1], found


def _best_pair(alpha: Tensor, beta: Tensor, free: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Exact arg-max over pairs p != q of ``(alpha_p + alpha_q) * -(beta_p + beta_q)`` subject to
    ``alpha_p + alpha_q > 0``, ``beta_p + beta_q < 0`` and both free, chunked over p."""
    n, d = alpha.shape
    neg = torch.full_like(alpha, -math.inf)
    alpha_f, beta_f = torch.where(free, alpha, neg), torch.where(free, beta, -neg)
    best = torch.full((n,), -math.inf, dtype=alpha.dtype, device=alpha.device)
    best_p = torch.zeros(n, dtype=torch.long, device=alpha.device)
    best_q = torch.zeros_like(best_p)
    chunk = max(1, _PAIR_BUDGET // max(1, n * d))
    cols = torch.arange(d, device=alpha.device)
    for start in range(0, d, chunk):
        rows = cols[start:start + chunk]
        a = alpha_f[:, rows, None] + alpha_f[:, None, :]  # (n, c, d)
        b = beta_f[:, rows, None] + beta_f[:, None, :]
        score = a * -b
        score = score.masked_fill(~((a > 0) & (b < 0)) | (rows[:, None] == cols[None, :]),
                                  -math.inf)
        value, flat = score.flatten(1).max(dim=1)
        better = value > best
        best = torch.where(better, value, best)
        best_p = torch.where(better, rows[flat // d], best_p)
        best_q = torch.where(better, flat % d, best_q)
    return best_p, best_q, torch.isfinite(best)

"""Carlini–Wagner L2 (Carlini and Wagner, "Towards Evaluating the Robustness of Neural Networks",
IEEE S&P 2017). Conventions: :mod:`advlab.attacks.common`. A minimal-norm attack.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from advlab.attacks.common import Model, check_inputs, expand_as_batch, repaired_success
from advlab.losses import is_success
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel

_EDGE = 1 - 1e-6  # keeps atanh finite for points on the box's faces


def carlini_wagner_l2(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
                      target: Tensor | None = None, confidence: float = 0.0, steps: int = 100,
                      binary_search_steps: int = 9, initial_const: float = 1e-2,
                      step_size: float = 1e-2, abort_early: bool = True,
                      best_of_targets: int = 0) -> Tensor:
    """C&W L2 attack (Carlini and Wagner, S&P 2017, §V-A; arXiv:1608.04644).

    Minimises ``||x' - x||_2^2 + c * f6(x')`` with Adam over ``w``, where
    ``x' = lo + (hi - lo) * (tanh(w) + 1) / 2`` keeps ``x'`` in the box of allowed values (the
    domain's bounds, with immutable and monotone features folded in; ``x' = w`` on unbounded
    coordinates), and
    ``f6 = max(Z_y - max_{j != y} Z_j, -confidence)`` (targeted: ``max(max_{j != t} Z_j - Z_t,
    -confidence)``) acts on the logits ``Z``. Each sample has its own ``c``, tuned by binary search
    over ``binary_search_steps`` rounds (x10 until a first success); a run stops early for a
    sample whose objective has not improved by 0.01% over a tenth of the steps. The smallest
    successful L2 perturbation of every round is kept. The untargeted f6 follows the runner-up
    class, so it can settle on a farther boundary than the nearest one; ``best_of_targets = k``
    also runs the targeted attack towards the ``k`` classes with the highest clean logits and keeps
    the smallest success, the paper's "best case" over targets (k times the cost).

    Args:
        confidence: kappa, the logit margin required of a success.
        steps: Adam iterations per round. step_size: Adam's learning rate.
        Others: see :mod:`advlab.attacks.common`; ``threat.norm`` must be ``"l2"``.

    Returns:
        The best successful point per sample (repaired to the domain), ``x`` where none was found.
    """
    check_inputs("carlini_wagner_l2", model, x, y, threat, target)
    if threat.norm != "l2":
        raise ValueError(f"carlini_wagner_l2: norm must be 'l2', got {threat.norm!r}")
    if steps < 1 or binary_search_steps < 1 or confidence < 0 or initial_const <= 0:
        raise ValueError("carlini_wagner_l2: need steps >= 1, binary_search_steps >= 1, "
                         f"confidence >= 0, initial_const > 0; got {steps}, "
                         f"{binary_search_steps}, {confidence}, {initial_const}")
    if best_of_targets < 0:
        raise ValueError(f"carlini_wagner_l2: best_of_targets must be >= 0, got {best_of_targets}")
    x = x.detach()
    lo_d, hi_d = threat.domain.delta_bounds(x)
    bounds = (x + lo_d, x + hi_d)
    knobs = (confidence, steps, binary_search_steps, initial_const, step_size, abort_early)
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, where="carlini_wagner_l2: model")
        best_x, best_l2 = _search(model, x, y, threat, target, bounds, *knobs)
        if target is None and best_of_targets > 0:
            ranked = clean.scatter(1, y[:, None], -math.inf).topk(
                min(best_of_targets, clean.shape[1] - 1), dim=1).indices
            for r in range(ranked.shape[1]):
                x_t, l2_t = _search(model, x, y, threat, ranked[:, r], bounds, *knobs)
                better = l2_t < best_l2
                best_x = torch.where(expand_as_batch(better, x), x_t, best_x)
                best_l2 = torch.where(better, l2_t, best_l2)
        # x itself where it already succeeds: the tanh round trip would return x plus float noise
        best_x = torch.where(expand_as_batch(is_success(clean, y, target), x), x, best_x)
    return best_x.detach()


def _search(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, target: Tensor | None,
            bounds: tuple[Tensor, Tensor], confidence: float, steps: int,
            binary_search_steps: int, initial_const: float, step_size: float,
            abort_early: bool) -> tuple[Tensor, Tensor]:
    """The per-sample binary search over ``c``; returns the best point and its L2 (inf if none)."""
    n = x.shape[0]
    best_x, best_l2 = x.clone(), torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    const = torch.full((n,), initial_const, dtype=x.dtype, device=x.device)
    c_lo, c_hi = torch.zeros_like(const), torch.full_like(const, math.inf)
    cls = y if target is None else target
    sign = 1.0 if target is None else -1.0  # untargeted: push Z_y below the others
    for _ in range(binary_search_steps):
        x_r, found = _optimise(model, x, cls, sign, *bounds, const, confidence, steps,
                               step_size, abort_early)
        valid, ok = repaired_success(model, x_r, x, y, threat, target)
        ok &= found
        l2 = (valid - x).flatten(1).norm(dim=1)
        better = ok & (l2 < best_l2)
        best_x = torch.where(expand_as_batch(better, x), valid, best_x)
        best_l2 = torch.where(better, l2, best_l2)
        c_hi = torch.where(ok, torch.minimum(c_hi, const), c_hi)
        c_lo = torch.where(ok, c_lo, torch.maximum(c_lo, const))
        const = torch.where(torch.isinf(c_hi), const * 10, (c_lo + c_hi) / 2)
    return best_x, best_l2


def _optimise(model: Model, x: Tensor, cls: Tensor, sign: float, lo: Tensor, hi: Tensor,
              const: Tensor, confidence: float, steps: int, lr: float,
              abort_early: bool) -> tuple[Tensor, Tensor]:
    """One round of Adam at fixed ``const``. Returns the smallest-L2 success per sample (or ``x``)
    and whether a success was found. Samples that abort early leave the batch."""
    n = x.shape[0]
    span = (hi - lo).clamp_min(0)
    fixed = span <= 0
    # coordinates unbounded on at least one side: no change of variables (x' = w); Adam's steps
    # are projected onto their finite bound, if any (a lower bound of 0, a monotone feature)
    free = torch.isinf(span)
    span = torch.where(free, torch.ones_like(span), span)
    unit = ((x - lo) / span.clamp_min(1e-30) * 2 - 1).clamp(-_EDGE, _EDGE)
    w = torch.where(free, x, torch.atanh(unit)).masked_fill(fixed, 0.0)
    best_x, found = x.clone(), torch.zeros(n, dtype=torch.bool, device=x.device)
    # the active batch, compacted whenever samples abort: (x, lo, span, fixed, free, cls, const,
    # w, m, v, best_l2, best_x, found, previous objective, original index, hi)
    state = [x, lo, span, fixed, free, cls, const, w, torch.zeros_like(w), torch.zeros_like(w),
             torch.full((n,), math.inf, dtype=x.dtype, device=x.device), best_x.clone(),
             found.clone(), torch.full((n,), math.inf, dtype=x.dtype, device=x.device),
             torch.arange(n, device=x.device), hi]
    check_every = max(1, steps // 10)
    for t in range(1, steps + 1):
        xa, loa, spa, fix, fre, ca, ka, w, m, v, b_l2, b_x, fnd, prev, idx, hia = state
        with torch.enable_grad():
            w_req = w.detach().requires_grad_(True)
            x_new = torch.where(fre, w_req, loa + spa * (torch.tanh(w_req) + 1) / 2)
            x_new = torch.where(fix, xa, x_new)
            logits = model(x_new)
            own = logits.gather(1, ca[:, None])[:, 0]
            other = logits.masked_fill(F.one_hot(ca, logits.shape[1]).bool(), -math.inf).amax(1)
            f6 = (sign * (own - other)).clamp_min(-confidence)
            l2sq = (x_new - xa).flatten(1).square().sum(1)
            objective = l2sq + ka * f6
            (grad,) = torch.autograd.grad(objective.sum(), w_req)
        with torch.no_grad():
            success = f6 <= -confidence if confidence > 0 else sign * (own - other) < 0
            l2 = l2sq.sqrt()
            better = success & (l2 < b_l2)
            state[10] = torch.where(better, l2, b_l2)
            state[11] = torch.where(expand_as_batch(better, x_new), x_new, b_x)
            state[12] = fnd | success
            m.mul_(0.9).add_(grad, alpha=0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            w = w - lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
            state[7] = torch.where(fre, torch.minimum(torch.maximum(w, loa), hia), w)
            if abort_early and t % check_every == 0:
                objective = objective.detach()
                stalled = objective > prev * 0.9999
                state[13] = objective
                if bool(stalled.any()):
                    gone = state[14][stalled]
                    best_x[gone], found[gone] = state[11][stalled], state[12][stalled]
                    state = [s[~stalled] for s in state]
                    if state[14].numel() == 0:
                        return best_x, found
    best_x[state[14]], found[state[14]] = state[11], state[12]
    return best_x, found

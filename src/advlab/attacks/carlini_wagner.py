"""Carlini–Wagner L2 (Carlini and Wagner, "Towards Evaluating the Robustness of Neural Networks",
IEEE S&P 2017). Conventions: :mod:`advlab.attacks.common`. A minimal-norm attack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

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

_EDGE = 1 - 1e-6  # keeps atanh finite for points on the box's faces
# box="auto": a sample is optimised by projection when more than this share of its movable,
# bounded coordinates lies on a face of the box, where tanh is saturated
_SATURATED = 0.1
Box = Literal["tanh", "project", "auto"]


def carlini_wagner_l2(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
                      target: Tensor | None = None, confidence: float = 0.0, steps: int = 100,
                      binary_search_steps: int = 9, initial_const: float = 1e-2,
                      step_size: float = 1e-2, abort_early: bool = True,
                      best_of_targets: int = 0, box: Box = "auto") -> Tensor:
    """C&W L2 attack (Carlini and Wagner, S&P 2017, §V–VI; arXiv:1608.04644).

    Minimises ``||x' - x||_2^2 + c * f6(x')`` with Adam, over ``x'`` in the box of allowed values
    (the domain's bounds, with immutable and monotone features folded in), where
    ``f6 = max(Z_y - max_{j != y} Z_j, -confidence)`` (targeted: ``max(max_{j != t} Z_j - Z_t,
    -confidence)``) acts on the logits ``Z``. The paper (§V-B, "Box constraints") weighs three
    ways of staying in the box (projected gradient descent, clipped gradient descent, a change
    of variables), finds that the choice matters little with f6 (§V-C) and uses the
    change of variables. ``box`` picks one:

    * ``"tanh"``: the paper's ``x' = lo + (hi - lo) * (tanh(w) + 1) / 2``, Adam over ``w``. A
      coordinate that starts on a face of the box starts at ``w = atanh(±(1 - 1e-6)) ≈ ±7.25``,
      where ``dx'/dw ≈ 1e-6``: at Adam's ~``step_size`` per step in ``w`` it needs some 500
      steps to get a usable slope back, so on data with many features at a bound (one-hot and
      binary encodings) the attack is frozen to the few interior ones.
    * ``"project"``: the paper's projected gradient descent: Adam over ``x'`` itself, clipped to
      the box after every step, so every coordinate moves by up to ~``step_size`` per step;
      gradient components pushing out of a face are zeroed first, so the momentum does not
      fight the clipping (the paper's objection to projecting with momentum).
    * ``"auto"``: per sample, ``"project"`` when more than 10% of its movable, bounded coordinates
      lie on a face of the box (``x`` at a bound, or a monotone feature), else ``"tanh"``.

    Coordinates unbounded on one side are optimised directly in both modes (clipped to their
    finite bound). Each sample has its own ``c``, tuned by binary search over
    ``binary_search_steps`` rounds (x10 until a first success); a run stops early for a sample
    whose objective has not improved by 0.01% over a tenth of the steps. The smallest successful
    L2 perturbation of every round is kept; on discrete domains, success and L2 are those of each
    iterate's nearest valid point (one more forward pass per step). The untargeted f6 follows
    the runner-up class, so it can settle on a farther boundary than the nearest one;
    ``best_of_targets = k`` also runs the targeted attack towards the ``k`` classes with the
    highest clean logits and keeps the smallest success, the paper's "best case" over targets
    (k times the cost).

    Args:
        confidence: kappa, the logit margin required of a success.
        steps: Adam iterations per round. step_size: Adam's learning rate.
        box: how ``x'`` is kept in the box: ``"tanh"``, ``"project"`` or ``"auto"`` (above).
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
    if box not in ("tanh", "project", "auto"):
        raise ValueError(f"carlini_wagner_l2: box must be 'tanh', 'project' or 'auto', got {box!r}")
    x = x.detach()
    lo_d, hi_d = threat.domain.delta_bounds(x)
    region = (x + lo_d, x + hi_d, _projected(box, lo_d, hi_d))
    knobs = (confidence, steps, binary_search_steps, initial_const, step_size, abort_early)
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, where="carlini_wagner_l2: model")
        best_x, best_l2 = _search(model, x, y, threat, target, region, *knobs)
        if target is None and best_of_targets > 0:
            ranked = clean.scatter(1, y[:, None], -math.inf).topk(
                min(best_of_targets, clean.shape[1] - 1), dim=1).indices
            for r in range(ranked.shape[1]):
                x_t, l2_t = _search(model, x, y, threat, ranked[:, r], region, *knobs)
                better = l2_t < best_l2
                best_x = torch.where(expand_as_batch(better, x), x_t, best_x)
                best_l2 = torch.where(better, l2_t, best_l2)
        # x itself where it already succeeds (the tanh round trip would return x plus noise)
        best_x = torch.where(expand_as_batch(is_success(clean, y, target), x), x, best_x)
    return best_x.detach()


def _projected(box: Box, lo_d: Tensor, hi_d: Tensor) -> Tensor:
    """Per sample ``(N,)``: whether ``x'`` is optimised directly with projected steps rather
    than through tanh. ``"auto"``: where more than ``_SATURATED`` of the movable, bounded
    coordinates start on a face (``delta`` bound 0: ``x`` at a bound, or a monotone feature)."""
    if box != "auto":
        return torch.full((lo_d.shape[0],), box == "project", device=lo_d.device)
    span = hi_d - lo_d
    can_move = span > 0
    on_face = can_move & torch.isfinite(span) & ((lo_d >= 0) | (hi_d <= 0))
    return on_face.flatten(1).sum(1) > _SATURATED * can_move.flatten(1).sum(1)


def _search(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, target: Tensor | None,
            region: tuple[Tensor, Tensor, Tensor], confidence: float, steps: int,
            binary_search_steps: int, initial_const: float, step_size: float,
            abort_early: bool) -> tuple[Tensor, Tensor]:
    """The per-sample binary search over ``c``; returns the best point and its L2 (inf if none)."""
    n = x.shape[0]
    best_x, best_l2 = x.clone(), torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    const = torch.full((n,), initial_const, dtype=x.dtype, device=x.device)
    c_lo, c_hi = torch.zeros_like(const), torch.full_like(const, math.inf)
    cls = y if target is None else target
    sign = 1.0 if target is None else -1.0  # untargeted: push Z_y below the others
    # discrete domains: judge every iterate by its nearest valid point, as the other attacks do
    repair = threat.domain.project if threat.domain.is_discrete else None
    for _ in range(binary_search_steps):
        x_r, found = _optimise(model, x, cls, sign, *region, const, confidence, steps,
                               step_size, abort_early, repair)
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
              projected: Tensor, const: Tensor, confidence: float, steps: int, lr: float,
              abort_early: bool, repair: Callable[[Tensor, Tensor], Tensor] | None,
              ) -> tuple[Tensor, Tensor]:
    """One round of Adam at fixed ``const``. Returns the smallest-L2 success per sample (or ``x``)
    and whether a success was found. Samples that abort early leave the batch."""
    n = x.shape[0]
    span = (hi - lo).clamp_min(0)
    fixed = span <= 0
    # projected samples, and coordinates unbounded on at least one side: no change of variables
    # (x' = w); each Adam step is projected onto [lo, hi] (its finite bounds, if any)
    free = torch.isinf(span) | expand_as_batch(projected, x)
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
    # constant over the round (compaction keeps them true): skip the branches nobody takes
    all_free, any_fixed, any_free = bool(free.all()), bool(fixed.any()), bool(free.any())

    def objective_and_grad(w: Tensor, xa: Tensor, loa: Tensor, spa: Tensor, fix: Tensor,
                           fre: Tensor, ca: Tensor, ka: Tensor) -> tuple[Tensor, ...]:
        """The point, f6 margin, squared L2, objective and its gradient in ``w``, per row."""
        with torch.enable_grad():
            w_req = w.detach().requires_grad_(True)
            x_new = w_req if all_free else torch.where(
                fre, w_req, loa + spa * (torch.tanh(w_req) + 1) / 2)
            if any_fixed:
                x_new = torch.where(fix, xa, x_new)
            margin = _margin(model(x_new), ca, sign)
            l2sq = (x_new - xa).flatten(1).square().sum(1)
            objective = l2sq + ka * margin.clamp_min(-confidence)
            (grad,) = torch.autograd.grad(objective.sum(), w_req)
        return x_new.detach(), margin.detach(), l2sq.detach(), objective.detach(), grad

    for t in range(1, steps + 1):
        xa, loa, spa, fix, fre, ca, ka, w, m, v, b_l2, b_x, fnd, prev, idx, hia = state
        x_new, margin, l2sq, objective, grad = batching.map_rows(
            model, objective_and_grad, w, xa, loa, spa, fix, fre, ca, ka)
        with torch.no_grad():
            x_ok, l2 = x_new, l2sq.sqrt()
            if repair is not None:
                x_ok = repair(x_ok, xa)
                margin = _margin(batching.forward(model, x_ok), ca, sign)
                l2 = (x_ok - xa).flatten(1).norm(dim=1)
            success = margin <= -confidence if confidence > 0 else margin < 0
            better = success & (l2 < b_l2)
            state[10] = torch.where(better, l2, b_l2)
            state[11] = torch.where(expand_as_batch(better, x_ok), x_ok, b_x)
            state[12] = fnd | success
            # x' = w on a face with a step pointing out: zero it, so that Adam's moments do not
            # pile up pushes that the projection undoes (the paper's objection to projecting)
            if any_free:
                blocked = -movable(-grad, w, loa, hia)
                grad = blocked if all_free else torch.where(fre, blocked, grad)
            m.mul_(0.9).add_(grad, alpha=0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            w = w - lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
            if any_free:
                clipped = torch.minimum(torch.maximum(w, loa), hia)
                w = clipped if all_free else torch.where(fre, clipped, w)
            state[7] = w
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


def _margin(logits: Tensor, cls: Tensor, sign: float) -> Tensor:
    """``sign * (Z_cls - max_{j != cls} Z_j)``: f6 before its clamp at ``-confidence``."""
    own = logits.gather(1, cls[:, None])[:, 0]
    other = logits.masked_fill(F.one_hot(cls, logits.shape[1]).bool(), -math.inf).amax(1)
    return sign * (own - other)

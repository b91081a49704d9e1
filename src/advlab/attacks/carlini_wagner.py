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

from advlab.attacks._discrete_repair import shorten
from advlab.attacks.common import (
    Model,
    check_inputs,
    expand_as_batch,
    index_or_none,
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
# box="auto": a coordinate is optimised directly when tanh's slope there exceeds this many times
# the sample's scale (the box is much wider than the data)
_WIDE = 2.0
# a sample stops searching when its bracket of c has narrowed to this share of its upper end
_CONVERGED = 0.01
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
    * ``"auto"``: ``"project"`` for every coordinate of a sample with more than 10% of its
      movable, bounded coordinates on a face of the box (``x`` at a bound, or a monotone
      feature), and for every coordinate whose box is much wider than the data (tanh's slope
      ``dx'/dw`` at ``x`` over twice the sample's scale ``max(1, RMS(x))``: there each step of
      ``step_size`` in ``w`` would move ``x'`` by up to ``step_size · (hi - lo) / 2``, ~1e4 in
      a ±1e6 box); ``"tanh"`` elsewhere.

    Coordinates unbounded on one side are optimised directly in every mode (clipped to their
    finite bound); direct steps are ~``step_size`` in input units, so give data far from unit
    scale a ``step_size`` at its scale. Each sample has its own ``c``, tuned by binary search over
    ``binary_search_steps`` rounds (x10 until a first success); a sample stops searching once its
    bracket of ``c`` is within 1% of its upper end, and samples that are already adversarial
    never start. Within a round, a sample stops (C&W's abort-early) when its objective has not
    fallen by 0.01% since a tenth of the steps ago. The smallest successful L2 perturbation of
    every round is kept. The untargeted f6 follows the runner-up class, so it can settle on a
    farther boundary than the nearest one; ``best_of_targets = k`` also runs the targeted attack
    towards the ``k`` classes with the highest clean logits and keeps the smallest success, the
    paper's "best case" over targets (k times the cost).

    advlab's extension to discrete domains (integer, binary, one-hot features): every iterate
    is judged by its nearest valid point (one more forward pass per step), and f6 stays
    unclamped while that point fails, so the relaxed iterate is pushed past the boundary until
    the repaired one crosses it too (the binary search then works on the repaired point's
    success); the best valid success is finally moved back towards ``x`` while it succeeds
    (:mod:`advlab.attacks._discrete_repair`). Every output is valid in the domain.

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
    region = (x + lo_d, x + hi_d, _direct(box, x, lo_d, hi_d))
    knobs = (confidence, steps, binary_search_steps, initial_const, step_size, abort_early)
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, where="carlini_wagner_l2: model")
        skip = is_success(clean, y, target)  # nothing to do: x itself is returned
        best_x, best_l2 = _search(model, x, y, threat, target, region, *knobs, skip)
        if target is None and best_of_targets > 0:
            ranked = clean.scatter(1, y[:, None], -math.inf).topk(
                min(best_of_targets, clean.shape[1] - 1), dim=1).indices
            for r in range(ranked.shape[1]):
                x_t, l2_t = _search(model, x, y, threat, ranked[:, r], region, *knobs, skip)
                better = l2_t < best_l2
                best_x = torch.where(expand_as_batch(better, x), x_t, best_x)
                best_l2 = torch.where(better, l2_t, best_l2)
        if threat.domain.is_discrete:  # advlab's extension: see attacks/_discrete_repair.py
            best_x = shorten(model, x, best_x, torch.isfinite(best_l2), y, target, threat.domain)
        # x itself where it already succeeds (the tanh round trip would return x plus noise)
        best_x = torch.where(expand_as_batch(skip, x), x, best_x)
    return best_x.detach()


def _direct(box: Box, x: Tensor, lo_d: Tensor, hi_d: Tensor) -> Tensor:
    """Bool, ``x``'s shape: the coordinates optimised directly (``x' = w``, projected steps)
    rather than through tanh.

    Unbounded coordinates are always direct. ``"auto"`` also makes direct every coordinate of a
    sample with more than ``_SATURATED`` of its movable, bounded coordinates on a face
    (``delta`` bound 0), and every coordinate whose box is much wider than the data: where
    tanh's slope at ``x``, ``dx'/dw = 2 (x - lo)(hi - x) / (hi - lo)``, exceeds ``_WIDE`` times
    the sample's scale ``max(1, RMS of x over its movable coordinates)``.
    """
    if box == "project":
        return torch.ones_like(x, dtype=torch.bool)
    span = hi_d - lo_d
    direct = ~torch.isfinite(span)
    if box == "tanh":
        return direct
    rows, can_move = x.shape[0], span > 0
    scale = (x.square() * can_move).reshape(rows, -1).sum(1) / can_move.reshape(
        rows, -1).sum(1).clamp_min(1)
    wide = 2 * (-lo_d) * hi_d / span.clamp_min(1e-30) > _WIDE * expand_as_batch(
        scale.sqrt().clamp_min(1.0), x)
    on_face = can_move & ~direct & ((lo_d >= 0) | (hi_d <= 0))
    saturated = on_face.reshape(rows, -1).sum(1) > _SATURATED * can_move.reshape(rows, -1).sum(1)
    return direct | wide | expand_as_batch(saturated, x)


def _search(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, target: Tensor | None,
            region: tuple[Tensor, Tensor, Tensor], confidence: float, steps: int,
            binary_search_steps: int, initial_const: float, step_size: float,
            abort_early: bool, skip: Tensor) -> tuple[Tensor, Tensor]:
    """The per-sample binary search over ``c``; returns the best point and its L2 (inf if none).

    Only the samples still searching run a round: not those in ``skip`` (already adversarial)
    nor those whose bracket ``[c_lo, c_hi]`` has narrowed to within ``_CONVERGED`` of ``c_hi``.
    """
    n = x.shape[0]
    best_x, best_l2 = x.clone(), torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    const = torch.full((n,), initial_const, dtype=x.dtype, device=x.device)
    c_lo, c_hi = torch.zeros_like(const), torch.full_like(const, math.inf)
    cls = y if target is None else target
    sign = 1.0 if target is None else -1.0  # untargeted: push Z_y below the others
    # discrete domains: judge every iterate by its nearest valid point, as the other attacks do
    repair = threat.domain.project if threat.domain.is_discrete else None
    active = ~skip
    for _ in range(binary_search_steps):
        idx = active.nonzero()[:, 0]
        if idx.numel() == 0:
            break
        xa = x[idx]
        x_r, found = _optimise(model, xa, cls[idx], sign, *(r[idx] for r in region), const[idx],
                               confidence, steps, step_size, abort_early, repair)
        valid, ok = repaired_success(model, x_r, xa, y[idx], threat, index_or_none(target, idx))
        ok &= found
        l2 = (valid - xa).flatten(1).norm(dim=1)
        better = ok & (l2 < best_l2[idx])
        best_x[idx[better]], best_l2[idx[better]] = valid[better], l2[better]
        c = const[idx]
        c_hi[idx] = torch.where(ok, torch.minimum(c_hi[idx], c), c_hi[idx])
        c_lo[idx] = torch.where(ok, c_lo[idx], torch.maximum(c_lo[idx], c))
        const = torch.where(torch.isinf(c_hi), const * 10, (c_lo + c_hi) / 2)
        active &= ~(torch.isfinite(c_hi) & (c_hi - c_lo <= _CONVERGED * c_hi))
    return best_x, best_l2


def _optimise(model: Model, x: Tensor, cls: Tensor, sign: float, lo: Tensor, hi: Tensor,
              direct: Tensor, const: Tensor, confidence: float, steps: int,
              lr: float, abort_early: bool, repair: Callable[[Tensor, Tensor], Tensor] | None,
              ) -> tuple[Tensor, Tensor]:
    """One round of Adam at fixed ``const``. Returns the smallest-L2 success per sample (or ``x``)
    and whether a success was found. Samples that abort early leave the batch."""
    n = x.shape[0]
    span = (hi - lo).clamp_min(0)
    fixed = span <= 0
    # direct coordinates: no change of variables (x' = w); each Adam step is projected onto
    # [lo, hi] (its finite bounds, if any)
    span = torch.where(direct, torch.ones_like(span), span)
    unit = ((x - lo) / span.clamp_min(1e-30) * 2 - 1).clamp(-_EDGE, _EDGE)
    w = torch.where(direct, x, torch.atanh(unit)).masked_fill(fixed, 0.0)
    best_x, found = x.clone(), torch.zeros(n, dtype=torch.bool, device=x.device)
    inf = torch.full((n,), math.inf, dtype=x.dtype, device=x.device)
    window = max(1, steps // 10)
    # the active batch, compacted whenever samples abort: (x, lo, span, fixed, direct, cls,
    # const, w, m, v, best_l2, best_x, found, the objectives of the last steps // 10 steps (a
    # ring), original index, hi, hinge: whether f6 is clamped at -confidence, see below)
    state = [x, lo, span, fixed, direct, cls, const, w, torch.zeros_like(w), torch.zeros_like(w),
             inf, best_x.clone(), found.clone(), inf[:, None].repeat(1, window),
             torch.arange(n, device=x.device),
             hi, torch.full((n,), repair is None, device=x.device)]
    # constant over the round (compaction keeps them true): skip the branches nobody takes
    all_direct, any_fixed, any_direct = bool(direct.all()), bool(fixed.any()), bool(direct.any())

    def objective_and_grad(w: Tensor, xa: Tensor, loa: Tensor, spa: Tensor, fix: Tensor,
                           dra: Tensor, ca: Tensor, ka: Tensor, hinge: Tensor
                           ) -> tuple[Tensor, ...]:
        """The point, f6 margin, squared L2, objective and its gradient in ``w``, per row."""
        with torch.enable_grad():
            w_req = w.detach().requires_grad_(True)
            x_new = w_req if all_direct else torch.where(
                dra, w_req, loa + spa * (torch.tanh(w_req) + 1) / 2)
            if any_fixed:
                x_new = torch.where(fix, xa, x_new)
            margin = _margin(model(x_new), ca, sign)
            l2sq = (x_new - xa).flatten(1).square().sum(1)
            f6 = torch.where(hinge, margin.clamp_min(-confidence), margin)
            objective = l2sq + ka * f6
            (grad,) = torch.autograd.grad(objective.sum(), w_req)
        return x_new.detach(), margin.detach(), l2sq.detach(), objective.detach(), grad

    for t in range(1, steps + 1):
        xa, loa, spa, fix, dra, ca, ka, w, m, v, b_l2, b_x, fnd, prev, idx, hia, hinge = state
        x_new, margin, l2sq, objective, grad = batching.map_rows(
            model, objective_and_grad, w, xa, loa, spa, fix, dra, ca, ka, hinge)
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
            if repair is not None:  # f6 unclamped while the repaired point fails
                state[16] = success
            # x' = w on a face with a step pointing out: zero it, so that Adam's moments do not
            # pile up pushes that the projection undoes (the paper's objection to projecting)
            if any_direct:
                blocked = -movable(-grad, w, loa, hia)
                grad = blocked if all_direct else torch.where(dra, blocked, grad)
            m.mul_(0.9).add_(grad, alpha=0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            w = w - lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
            if any_direct:
                clipped = torch.minimum(torch.maximum(w, loa), hia)
                w = clipped if all_direct else torch.where(dra, clipped, w)
            state[7] = w
            if abort_early:
                # C&W's own rule, checked at every step: stop when the objective has not fallen
                # by 0.01 % since a tenth of the steps ago
                ago = prev[:, t % window]  # inf until the window has filled: never stalled
                stalled = objective > ago - 1e-4 * ago.abs()
                prev[:, t % window] = objective
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

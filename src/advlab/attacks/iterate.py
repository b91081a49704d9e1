"""The steepest-ascent loop of BIM and PGD (:mod:`advlab.attacks.fgsm_pgd`): one run from a start
point, with per-sample early stopping. Returns ``(x_adv, loss, success)`` per sample.

What a step costs, and nothing more:

* one forward+backward of the *active* samples (:class:`~advlab.accelerate.GradientPass`).
  Its logits decide the success of the current iterate: no forward is spent on checking. Only the
  last iterate, which has no gradient pass, gets a forward (of the samples still active). A
  discrete domain (the point that counts is the repaired one) or a lower-precision pass (the
  float32 model decides) adds a forward of the candidate successes alone;
* the step, the projection onto ball ∩ box and the domain's relaxation, fused for L∞ into one
  clamp to a precomputed per-coordinate interval, in place on preallocated buffers;
* the highest-loss iterate, kept without copying when every sample improved (the current buffer
  becomes the best one, the next iterate goes to a spare buffer), else by a copy of the rows that
  improved.

Samples that succeed leave the active batch at the next compaction, every ``compact_every`` steps
(:data:`COMPACT_EVERY`, measured in BENCHMARKS.md). In between, an L∞ sample that succeeded is
frozen (its step is zeroed, so its iterate stays its first success) and nothing is synchronised
with the host. Other norms, discrete domains and lower precision compact at every step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from advlab import norms
from advlab.accelerate import GradientPass
from advlab.attacks.common import expand_as_batch, movable, repaired_success
from advlab.losses import get_loss, is_success
from advlab.models.wrappers import check_logits
from advlab.threat import ThreatModel

COMPACT_EVERY = {"cpu": 1, "cuda": 4}
"""Steps between two compactions of the active set, per device type (others: 4)."""


def linf_box(threat: ThreatModel, x: Tensor) -> tuple[Tensor, Tensor]:
    """The L∞ ball ∩ the domain's relaxation around ``x`` as a per-coordinate interval, in
    absolute coordinates: a clamp to it is the exact projection."""
    lo, hi = threat.delta_bounds(x)
    return x + lo.clamp_min(-threat.eps), x + hi.clamp_max(threat.eps)


def direction(grad: Tensor, delta: Tensor, lo: Tensor, hi: Tensor, threat: ThreatModel,
              coordinates_per_step: int | None) -> Tensor:
    """The steepest-ascent direction of ``threat.norm`` among the moves the box allows."""
    g = movable(grad, delta, lo, hi)
    k = 1
    if threat.norm == "l1":
        d = math.prod(grad.shape[1:])
        k = min(coordinates_per_step or max(1, d // 100), d)
    return norms.steepest_ascent(g, threat.norm, k=k)


def iterate(pass_: GradientPass, x0: Tensor, y: Tensor, target: Tensor | None,
            threat: ThreatModel, start: Tensor, *, steps: int, step_size: float,
            early_stop: bool, coordinates_per_step: int | None,
            compact_every: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``steps`` projected steepest-ascent steps from ``start``; see the module docstring."""
    n, dev = x0.shape[0], x0.device
    out, out_loss = x0.clone(), x0.new_empty(n)
    success = torch.zeros(n, dtype=torch.bool, device=dev)
    linf = threat.norm == "linf"
    confirm = threat.domain.is_discrete or not pass_.exact
    every = 1 if (confirm or not linf or not early_stop) else \
        max(1, compact_every or COMPACT_EVERY.get(dev.type, 4))
    host = dev.type == "cpu"  # reading a flag back is free here: skip work it proves useless
    lo, hi = linf_box(threat, x0) if linf else threat.delta_bounds(x0)
    cur = start.clone() if start is x0 else start
    s: dict[str, Tensor | None] = {
        "x0": None if linf and not confirm else x0, "lo": lo, "hi": hi, "y": y, "t": target,
        "best_loss": torch.full((n,), -math.inf, dtype=x0.dtype, device=dev),
        "best_hit": torch.zeros(n, dtype=torch.bool, device=dev),
        "idx": torch.arange(n, device=dev),
        "done": torch.zeros(n, dtype=torch.bool, device=dev) if every > 1 else None,
        "first_loss": x0.new_empty(n) if every > 1 else None}
    best, spare = cur, None
    loss_fn = get_loss(pass_.loss)
    for step in range(steps + 1):
        last = step == steps
        ya, ta = s["y"], s["t"]
        assert ya is not None
        if last:  # the last iterate has no gradient pass: one forward of the active samples
            logits = pass_.forward(cur)
            values = loss_fn(logits, ya, ta)
        else:
            logits, values, grad = pass_(cur, ya, ta)
        if step == 0:
            check_logits(logits, where="pgd: model")
        hit = is_success(logits, ya, ta)
        best, spare = _keep_best(s, cur, best, spare, values, hit, host)
        if early_stop:
            done = s["done"]
            if done is not None:  # deferred compaction: freeze the new successes
                new = hit & ~done
                s["first_loss"] = torch.where(new, values, s["first_loss"])  # type: ignore[arg-type]
                s["done"] = done = done | new
                if not last:
                    grad.mul_(expand_as_batch(~done, grad).to(grad.dtype))
                hit = done if (last or (step + 1) % every == 0) else None
            if hit is not None:
                h = hit.nonzero()[:, 0]
                if h.numel():
                    cur, best, spare, grad_or_none = _leave(
                        pass_, s, threat, h, cur, best, spare, values,
                        None if last else grad, out, out_loss, success, confirm)
                    if s["idx"].numel() == 0:  # type: ignore[union-attr]
                        return out, out_loss, success
                    if grad_or_none is not None:
                        grad = grad_or_none
        if last:
            break
        nxt = cur if best is not cur else (spare if spare is not None else torch.empty_like(cur))
        spare = None if nxt is spare else spare
        cur = _step(s, cur, grad, nxt, threat, step_size, coordinates_per_step)
    return _finish(pass_, s, threat, best, out, out_loss, success, confirm)


def _keep_best(s: dict[str, Tensor | None], cur: Tensor, best: Tensor, spare: Tensor | None,
               values: Tensor, hit: Tensor, host: bool) -> tuple[Tensor, Tensor | None]:
    """Track each sample's highest-loss iterate in ``best``; returns ``(best, spare)``."""
    improved = values > s["best_loss"]  # type: ignore[operator]
    s["best_loss"] = torch.where(improved, values, s["best_loss"])  # type: ignore[arg-type]
    s["best_hit"] = torch.where(improved, hit, s["best_hit"])  # type: ignore[arg-type]
    if best is cur:
        return best, spare
    if host and bool(improved.all()):  # the current buffer becomes the best one: no copy
        return cur, best
    if host:
        rows = improved.nonzero()[:, 0]
        best.index_copy_(0, rows, cur.index_select(0, rows))
    else:
        torch.where(expand_as_batch(improved, cur), cur, best, out=best)
    return best, spare


def _step(s: dict[str, Tensor | None], cur: Tensor, grad: Tensor, nxt: Tensor,
          threat: ThreatModel, step_size: float, coordinates_per_step: int | None) -> Tensor:
    """The next iterate, written into ``nxt`` (which may be ``cur``)."""
    lo, hi = s["lo"], s["hi"]
    assert lo is not None and hi is not None
    if threat.norm == "linf":  # x + alpha * sign(g), clamped to ball ∩ box: in place
        torch.add(cur, grad.sign_(), alpha=step_size, out=nxt)
        return torch.clamp(nxt, lo, hi, out=nxt)
    x0 = s["x0"]
    assert x0 is not None
    delta = cur - x0
    d = direction(grad, delta, lo, hi, threat, coordinates_per_step)
    delta.add_(d, alpha=step_size)
    norms.project(delta, threat.norm, threat.eps, lower=lo, upper=hi, out=delta)
    return torch.add(x0, delta, out=nxt)


def _leave(pass_: GradientPass, s: dict[str, Tensor | None], threat: ThreatModel, h: Tensor,
           cur: Tensor, best: Tensor, spare: Tensor | None, values: Tensor, grad: Tensor | None,
           out: Tensor, out_loss: Tensor, success: Tensor, confirm: bool
           ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Record the successes ``h`` (rows of the active batch) and compact them away."""
    points = cur[h]
    losses = values[h] if s["first_loss"] is None else s["first_loss"][h]  # type: ignore[index]
    if confirm:  # the repaired point (discrete domains) or the float32 model decides
        x0, t = s["x0"], s["t"]
        assert x0 is not None and s["y"] is not None
        points, ok = repaired_success(pass_.model, points, x0[h], s["y"][h], threat,
                                      None if t is None else t[h])
        h, points, losses = h[ok], points[ok], losses[ok]
    rows = s["idx"][h]  # type: ignore[index]
    out[rows], out_loss[rows], success[rows] = points, losses, True
    keep = torch.ones_like(s["best_hit"], dtype=torch.bool)  # type: ignore[arg-type]
    keep[h] = False
    if bool(keep.all()):
        return cur, best, spare, grad
    k = keep.nonzero()[:, 0]
    for name, v in s.items():
        if v is not None:
            s[name] = v.index_select(0, k)
    new_cur = cur.index_select(0, k)
    new_best = new_cur if best is cur else best.index_select(0, k)
    new_spare = None if spare is None else spare[: k.numel()]
    return new_cur, new_best, new_spare, None if grad is None else grad.index_select(0, k)


def _finish(pass_: GradientPass, s: dict[str, Tensor | None], threat: ThreatModel, best: Tensor,
            out: Tensor, out_loss: Tensor, success: Tensor,
            confirm: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The samples still active: their highest-loss iterate, repaired and checked if needed."""
    idx, b_hit = s["idx"], s["best_hit"]
    assert idx is not None and b_hit is not None
    if confirm:  # repair the kept point (discrete domains), and let the float32 model decide
        x0, y, t = s["x0"], s["y"], s["t"]
        assert x0 is not None and y is not None
        best, b_hit = repaired_success(pass_.model, best, x0, y, threat, t)
    out[idx], out_loss[idx], success[idx] = best, s["best_loss"], b_hit  # type: ignore[index]
    return out, out_loss, success

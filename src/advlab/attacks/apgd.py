"""Auto-PGD (APGD) of Croce and Hein: a parameter-free PGD with momentum and an adaptive step.

Conventions: :mod:`advlab.attacks.common`. Registered as ``apgd-ce`` (cross-entropy),
``apgd-dlr`` (the DLR loss) and ``apgd-t`` (targeted DLR over the top runner-up classes).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from advlab import norms
from advlab.attacks.common import (
    Model,
    check_inputs,
    expand_as_batch,
    index_or_none,
    movable,
    repaired_success,
)
from advlab.losses import LossName, get_loss, is_success, logits_and_grad
from advlab.models import batching
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel

MOMENTUM = 0.75  # the paper's alpha
RHO = 0.75  # condition 1: share of loss increases below which the step is halved
L1_SHRINK, L1_MIN_STEP = 1.5, 10.0  # APGD-L1: step divided by 1.5, never below eps / 10


def checkpoints(steps: int) -> list[int]:
    """The paper's checkpoints ``w_j = ceil(p_j * steps)``: ``p_0 = 0``, ``p_1 = 0.22``,
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` (Croce and Hein 2020, §3.2)."""
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({min(steps, math.ceil(round(q * steps, 9))) for q in p[1:]} - {0})


def apgd(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
         target: Tensor | None = None, loss: LossName = "ce", steps: int = 100,
         restarts: int = 1, early_stop: bool = True, eot_iter: int = 1,
         start: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """APGD (Croce and Hein, ICML 2020, Algorithm 1; arXiv:2003.01690), L∞, L2 and L1.

    Maximises ``loss`` over the ball ∩ domain from a random start: a first step
    ``x1 = P(x0 + eta grad)``, then ``z = P(xk + eta d(grad))`` and ``x_{k+1} = P(xk + alpha (z -
    xk) + (1 - alpha)(xk - x_{k-1}))`` with ``alpha = 0.75`` and ``eta_0 = 2 eps``. At the
    checkpoints ``w_j`` the step is halved, and the iterate restarts from the best point, when
    fewer than ``rho = 0.75`` of the steps since the last checkpoint raised the loss (condition
    1) or when neither the step nor the best loss changed since it (condition 2). L1 follows
    APGD-L1 (Croce and Hein, ICML 2021, "Mind the box", arXiv:2103.01208, §3): sparse steps of
    ``eta_0 = eps`` on the top-``k`` gradient coordinates, ``k`` set every 4 % of the steps to the
    best point's sparsity over 1.5, the step reset when that sparsity fell by 5 % and divided by
    1.5 otherwise; no momentum; a sparse start (a Gaussian projected onto the ball ∩ box); the
    exact projection onto the L1 ball ∩ box.

    Each gradient pass's logits decide the success of its iterate (no extra forward); samples
    that succeed leave the batch, restarts run on the samples still robust, and ``eot_iter > 1``
    averages the gradient over that many passes (EOT, as AutoAttack's ``rand`` version).

    Args:
        loss: ``"ce"`` or ``"dlr"`` (targeted: ``-CE(z, t)``, the paper's targeted DLR).
        steps: ``N_iter`` per restart.
        start: the first restart's ``x^(0)`` instead of a random point (AutoAttack's
            ``x_init``), projected onto the threat model. Others: see
            :mod:`advlab.attacks.common`.

    Returns:
        ``x_adv`` inside ``threat``: each sample's first success, else its highest-loss point
        (every sample's highest-loss point when ``early_stop=False``).
    """
    name = f"apgd-{loss}"
    _check(name, model, x, y, threat, target, steps, restarts, eot_iter)
    get_loss(loss)
    x = x.detach()
    if start is not None and start.shape != x.shape:
        raise ValueError(f"{name}: start has shape {tuple(start.shape)}, x {tuple(x.shape)}")
    out = x.clone()
    best = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    with eval_mode(model):
        for r in range(restarts):
            idx = (~done).nonzero()[:, 0] if early_stop else torch.arange(len(x), device=x.device)
            if idx.numel() == 0:
                break
            first = None if start is None or r > 0 else \
                threat.project(start.detach()[idx], x[idx], relax=True)
            x_r, loss_r, succ_r = _run(model, x[idx], y[idx], index_or_none(target, idx), threat,
                                       loss, steps, early_stop, eot_iter, generator, name, first)
            better = succ_r | (loss_r > best[idx]) if not early_stop else torch.ones_like(succ_r)
            out[idx] = torch.where(expand_as_batch(better, x_r), x_r, out[idx])
            best[idx] = torch.where(better, loss_r, best[idx])
            done[idx] |= succ_r
    return out.detach()


def apgd_t(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
           target: Tensor | None = None, n_targets: int = 9, steps: int = 100,
           restarts: int = 1, early_stop: bool = True, eot_iter: int = 1,
           generator: torch.Generator | None = None) -> Tensor:
    """APGD-T (Croce and Hein, ICML 2020, §4): APGD on the targeted DLR loss
    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` towards each of the ``n_targets`` classes
    ranked highest by the clean logits after ``y`` (9, or the number of classes - 1), each
    target run only on the samples still robust. Untargeted from the outside: a sample succeeds
    when misclassified as any class. With ``target=`` it is one targeted APGD-DLR run.
    Samples misclassified on ``x`` come back as ``x``. Other arguments as in :func:`apgd`."""
    _check("apgd-t", model, x, y, threat, target, steps, restarts, eot_iter)
    if n_targets < 1:
        raise ValueError(f"apgd-t: n_targets must be >= 1, got {n_targets}")
    x = x.detach()
    if target is not None:
        with eval_mode(model):
            return apgd(model, x, y, threat, target=target, loss="dlr", steps=steps,
                        restarts=restarts, early_stop=early_stop, eot_iter=eot_iter,
                        generator=generator)
    with eval_mode(model), torch.no_grad():
        logits = batching.forward(model, x)
    out = x.clone()
    done = logits.argmax(1) != y
    best = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    ranked = logits.scatter(1, y[:, None], -math.inf).argsort(1, descending=True)
    loss_fn = get_loss("dlr")
    with eval_mode(model):
        for r in range(min(n_targets, logits.shape[1] - 1)):
            idx = (~done).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            x_r, y_r, t_r = x[idx], y[idx], ranked[idx, r]
            # one target at a time: the run succeeds once the target is reached, and any
            # misclassification counts for the untargeted ensemble (checked on the result)
            adv = apgd(model, x_r, y_r, threat, target=t_r, loss="dlr", steps=steps,
                       restarts=restarts, early_stop=early_stop, eot_iter=eot_iter,
                       generator=generator)
            valid, fooled = repaired_success(model, adv, x_r, y_r, threat, None)
            if early_stop:
                out[idx[fooled]] = valid[fooled]
                done[idx[fooled]] = True
            else:
                with torch.no_grad():
                    value = loss_fn(batching.forward(model, valid), y_r, t_r)
                better = fooled | (value > best[idx])
                out[idx] = torch.where(expand_as_batch(better, valid), valid, out[idx])
                best[idx] = torch.where(better, value, best[idx])
    return out.detach()


def _check(name: str, model: Model, x: Tensor, y: Tensor, threat: ThreatModel,
           target: Tensor | None, steps: int, restarts: int, eot_iter: int) -> None:
    check_inputs(name, model, x, y, threat, target, needs_finite_eps=True)
    if threat.norm not in ("linf", "l2", "l1"):
        raise ValueError(f"{name}: norm must be 'linf', 'l2' or 'l1', got {threat.norm!r}")
    if steps < 1 or restarts < 1 or eot_iter < 1:
        raise ValueError(f"{name}: steps, restarts and eot_iter must be >= 1, got {steps}, "
                         f"{restarts}, {eot_iter}")


def _evaluate(model: Model, x: Tensor, y: Tensor, t: Tensor | None, loss: str, eot_iter: int,
              need_grad: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """Logits, loss and (if ``need_grad``) gradient at ``x``, averaged over ``eot_iter`` passes."""
    if not need_grad:
        with torch.no_grad():
            logits = batching.forward(model, x)
            for _ in range(eot_iter - 1):
                logits = logits + batching.forward(model, x)
            logits = logits / eot_iter
        return logits, get_loss(loss)(logits, y, t), None
    logits, values, grad = logits_and_grad(model, x, y, loss=loss, target=t)
    for _ in range(eot_iter - 1):
        more = logits_and_grad(model, x, y, loss=loss, target=t)
        logits, values, grad = logits + more[0], values + more[1], grad + more[2]
    return logits / eot_iter, values / eot_iter, grad / eot_iter


def _sparse_direction(grad: Tensor, k_frac: Tensor) -> Tensor:
    """APGD-L1's step direction: ``sign(g)`` on the coordinates whose ``|g|`` reaches the
    per-sample top-``k`` threshold (``k = round(k_frac * d)``, at least 1), scaled to unit L1
    norm. (Rounding down instead, ``k`` stalls at 2 for a best point of sparsity 2, and on a
    linear model the step then splits forever between the two largest weights.)"""
    flat = grad.flatten(1).abs()
    d = flat.shape[1]
    pos = (d - torch.round(k_frac * d).long()).clamp(0, d - 1)  # the k-th largest |g|
    threshold = flat.sort(dim=1).values.gather(1, pos[:, None])
    keep = (flat >= threshold) & (flat > 0)
    step = grad.flatten(1).sign() * keep
    return (step / keep.sum(1, keepdim=True).clamp_min(1)).reshape(grad.shape)


def _run(model: Model, x0: Tensor, y: Tensor, target: Tensor | None, threat: ThreatModel,
         loss: str, steps: int, early_stop: bool, eot_iter: int,
         generator: torch.Generator | None, name: str,
         first: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """One APGD run on a batch, compacting it as samples succeed: (x_adv, loss, success)."""
    n, norm, eps = x0.shape[0], threat.norm, threat.eps
    out, out_loss = x0.clone(), torch.empty(n, dtype=x0.dtype, device=x0.device)
    success = torch.zeros(n, dtype=torch.bool, device=x0.device)
    lo, hi = threat.delta_bounds(x0)
    if norm == "linf":  # ball ∩ box is a box: the projection is a clamp
        lo, hi = x0 + lo.clamp_min(-eps), x0 + hi.clamp_max(eps)

    def project(z: Tensor, s: dict[str, Tensor]) -> Tensor:
        if norm == "linf":
            return torch.clamp(z, s["lo"], s["hi"])
        return s["x0"] + norms.project(z - s["x0"], norm, eps, lower=s["lo"], upper=s["hi"])

    if first is not None:
        start = first
    elif norm == "l1":  # APGD-L1's sparse start: a Gaussian projected onto the ball ∩ box
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        start = threat.project(x0 + noise, x0, relax=True)
    else:
        start = threat.random_point(x0, generator, relax=True)
    logits, values, grad = _evaluate(model, start, y, target, loss, eot_iter, steps > 0)
    check_logits(logits, where=f"{name}: model")
    eta0 = eps * (1.0 if norm == "l1" else 2.0)
    d = math.prod(x0.shape[1:])
    s: dict[str, Tensor] = {
        "x": start, "prev": start, "grad": grad, "f": values,  # type: ignore[dict-item]
        "x_max": start, "f_max": values, "g_max": grad,  # type: ignore[dict-item]
        "h_max": is_success(logits, y, target),
        "eta": torch.full((n,), eta0, dtype=x0.dtype, device=x0.device),
        "ups": torch.zeros(n, dtype=torch.long, device=x0.device),
        "f_last": values, "reduced": torch.zeros(n, dtype=torch.bool, device=x0.device),
        "k_frac": torch.full((n,), 0.2, dtype=x0.dtype, device=x0.device),
        "sp_old": torch.full((n,), float(d), dtype=x0.dtype, device=x0.device),
        "x0": x0, "y": y, "lo": lo, "hi": hi, "idx": torch.arange(n, device=x0.device)}
    if target is not None:
        s["t"] = target
    marks = set(checkpoints(steps)) if norm != "l1" else \
        set(range(max(1, round(0.04 * steps)), steps + 1, max(1, round(0.04 * steps))))
    last_mark = 0
    for k in range(steps + 1):
        if k > 0:
            logits, values, grad = _evaluate(model, s["x"], s["y"], s.get("t"), loss, eot_iter,
                                             k < steps)
            s["ups"] = s["ups"] + (values > s["f"])
            s["f"], s["grad"] = values, grad  # type: ignore[assignment]
            better = values > s["f_max"]
            s["x_max"] = torch.where(expand_as_batch(better, s["x"]), s["x"], s["x_max"])
            s["f_max"] = torch.where(better, values, s["f_max"])
            s["h_max"] = torch.where(better, is_success(logits, s["y"], s.get("t")), s["h_max"])
            if grad is not None:
                s["g_max"] = torch.where(expand_as_batch(better, grad), grad, s["g_max"])
        if early_stop:
            s = _retire(model, s, is_success(logits, s["y"], s.get("t")), threat, out, out_loss,
                        success)
            if s["idx"].numel() == 0:
                return out, out_loss, success
        if k == steps:
            break
        if k in marks:
            _checkpoint(s, k - last_mark, norm, eta0, d)
            last_mark = k
        g = movable(s["grad"], s["x"] - s["x0"], s["lo"] - (s["x0"] if norm == "linf" else 0),
                    s["hi"] - (s["x0"] if norm == "linf" else 0))
        eta = expand_as_batch(s["eta"], g)
        if norm == "l1":
            new = project(s["x"] + eta * _sparse_direction(g, s["k_frac"]), s)
        else:
            z = project(s["x"] + eta * norms.steepest_ascent(g, norm), s)
            a = MOMENTUM if k > 0 else 1.0
            new = project(s["x"] + a * (z - s["x"]) + (1 - a) * (s["x"] - s["prev"]), s)
        s["prev"], s["x"] = s["x"], new
    b_x, hit = s["x_max"], s["h_max"]  # early stop: every success has retired already
    if threat.domain.is_discrete:  # repair the kept point, then check success again
        b_x, hit = repaired_success(model, b_x, s["x0"], s["y"], threat, s.get("t"))
    out[s["idx"]], out_loss[s["idx"]], success[s["idx"]] = b_x, s["f_max"], hit
    return out, out_loss, success


def _checkpoint(s: dict[str, Tensor], since: int, norm: str, eta0: float, d: int) -> None:
    """The step-size rule at a checkpoint, in place on the active state ``s``."""
    if norm == "l1":
        sparsity = (s["x_max"] != s["x0"]).flatten(1).sum(1).to(s["eta"].dtype)
        restart = sparsity / s["sp_old"].clamp_min(1) < 0.95
        s["eta"] = torch.where(restart, torch.full_like(s["eta"], eta0),
                               s["eta"] / L1_SHRINK).clamp(eta0 / L1_MIN_STEP, eta0)
        s["k_frac"] = (sparsity / d / 1.5).clamp_min(1.0 / d)
        s["sp_old"] = sparsity
    else:
        cond1 = s["ups"].to(s["eta"].dtype) < RHO * since
        cond2 = ~s["reduced"] & (s["f_max"] <= s["f_last"])
        restart = cond1 | cond2
        s["eta"] = torch.where(restart, s["eta"] / 2, s["eta"])
        s["reduced"], s["f_last"] = restart, s["f_max"]
    s["ups"] = torch.zeros_like(s["ups"])
    s["x"] = torch.where(expand_as_batch(restart, s["x"]), s["x_max"], s["x"])
    s["grad"] = torch.where(expand_as_batch(restart, s["grad"]), s["g_max"], s["grad"])
    s["f"] = torch.where(restart, s["f_max"], s["f"])


def _retire(model: Model, s: dict[str, Tensor], hit: Tensor, threat: ThreatModel, out: Tensor,
            out_loss: Tensor, success: Tensor) -> dict[str, Tensor]:
    """Record the samples whose current iterate succeeded (after the discrete repair) and drop
    them from the active state."""
    if not bool(hit.any()):
        return s
    h = hit.nonzero()[:, 0]
    valid = s["x"][h]
    if threat.domain.is_discrete:
        valid, ok = repaired_success(model, valid, s["x0"][h], s["y"][h], threat,
                                     s["t"][h] if "t" in s else None)
        h, valid = h[ok], valid[ok]
    out[s["idx"][h]], out_loss[s["idx"][h]], success[s["idx"][h]] = valid, s["f"][h], True
    keep = torch.ones_like(hit)
    keep[h] = False
    return {k: (v[keep] if v is not None else v) for k, v in s.items()}

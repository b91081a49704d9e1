"""Gradient-sign family: FGSM/FGM, BIM and PGD, in L∞, L2 and L1.

Conventions (signature, targets, domain handling, guarantees) are in :mod:`advlab.attacks.common`.
All three are the same steepest-ascent iteration, ``x <- Proj(x + step_size * d(grad))``, with
``d`` from :func:`advlab.norms.steepest_ascent` and ``Proj`` = :meth:`ThreatModel.project`; they
differ in the number of steps, the start and the restarts.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from advlab.accelerate import Precision, gradient_pass
from advlab.attacks.common import (
    Model,
    check_inputs,
    expand_as_batch,
    index_or_none,
    step_size_rule,
)
from advlab.attacks.iterate import direction, iterate, linf_box
from advlab.losses import LossName, get_loss
from advlab.models.wrappers import check_logits, eval_mode
from advlab.threat import ThreatModel


def fgsm_step(eps: float, *, random_start: bool = False, **_: Any) -> float:
    """FGSM's default step: ``eps``; from a random start ``1.25 * eps`` (Wong et al. 2020)."""
    return eps * (1.25 if random_start else 1.0)


def bim_step(eps: float, *, steps: int = 10, **_: Any) -> float:
    """BIM's default step: ``1.25 * eps / steps`` (Kurakin et al. 2017)."""
    return 1.25 * eps / steps


def pgd_step(eps: float, *, steps: int = 40, **_: Any) -> float:
    """PGD's default step: ``2.5 * eps / steps`` (Madry et al. 2018)."""
    return 2.5 * eps / steps


@step_size_rule(fgsm_step)
def fgsm(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *, target: Tensor | None = None,
         loss: LossName = "ce", random_start: bool = False, step_size: float | None = None,
         generator: torch.Generator | None = None, compile: bool = False,
         precision: Precision = "fp32") -> Tensor:
    """FGSM / FGM: one steepest-ascent step (Goodfellow, Shlens, Szegedy, ICLR 2015, eq. 3;
    arXiv:1412.6572), with its L2 and L1 generalisations and an optional random start.

    Maximises the loss to first order: ``x + eps * sign(grad)`` for L∞, ``eps * grad/||grad||_2``
    for L2, all of ``eps`` on the largest-gradient coordinate for L1. With ``random_start``
    (Tramèr et al., ICLR 2018; Wong, Rice, Kolter, ICLR 2020) the step starts from a uniform point
    of the ball and ``step_size`` defaults to ``1.25 * eps`` (Wong et al.), then is projected.

    Args:
        model, x, y, threat, target: see :mod:`advlab.attacks.common`; ``threat.norm`` is
            ``"linf"``, ``"l2"`` or ``"l1"`` with a finite eps.
        loss: ``"ce"``, ``"margin"`` (C&W) or ``"dlr"``.
        random_start, step_size, generator: as above (``step_size`` defaults to ``eps``).
        compile, precision: how the gradient pass runs (:mod:`advlab.accelerate`).

    Returns:
        ``x_adv`` inside ``threat`` (ball and domain), same shape, dtype and device as ``x``.
    """
    check_inputs("fgsm", model, x, y, threat, target, needs_finite_eps=True)
    _check_norm("fgsm", threat)
    x = x.detach()
    alpha = step_size if step_size is not None else fgsm_step(threat.eps, random_start=random_start)
    pass_ = gradient_pass(model, loss, compile=compile, precision=precision, device=x.device)
    with eval_mode(model):
        start = threat.random_point(x, generator, relax=True) if random_start else x
        logits, _, grad = pass_(start, y, target)
        check_logits(logits, where="fgsm: model")
        if threat.norm == "linf" and threat.domain.is_box and not random_start and \
                alpha <= threat.eps:
            # a step of alpha <= eps stays in the ball: only the domain's bounds can cut it
            step = torch.add(x, grad.sign_(), alpha=alpha)  # grad is a fresh tensor: in place
            scalar = threat.domain.scalar_bounds
            if scalar is not None:
                return step.clamp_(*scalar)
            lower, upper = threat.domain.bounds(x.flatten(1))
            return step.flatten(1).clamp_(lower, upper).reshape(x.shape)
        if threat.norm == "linf" and not threat.domain.is_discrete:
            # ball ∩ box is a per-coordinate interval: one clamp is the exact projection, and the
            # clamp also undoes any step into a bound (so no masking of the gradient is needed)
            lo, hi = linf_box(threat, x)
            step = torch.add(start, grad.sign_(), alpha=alpha)
            return torch.clamp(step, lo, hi, out=step)
        lo, hi = threat.delta_bounds(x)
        d = direction(grad, start - x, lo, hi, threat, 1)
        x_adv = threat.project(start + alpha * d, x)
    return x_adv.detach()


@step_size_rule(bim_step)
def bim(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *, target: Tensor | None = None,
        steps: int = 10, step_size: float | None = None, loss: LossName = "ce",
        early_stop: bool = True, coordinates_per_step: int | None = None,
        compile: bool = False, precision: Precision = "fp32") -> Tensor:
    """BIM, the basic iterative method (Kurakin, Goodfellow, Bengio, 2017, eq. 2;
    arXiv:1607.02533): FGSM steps from ``x`` itself, each followed by ``Clip_{x,eps}``, here the
    exact projection onto the ball ∩ domain. ``step_size`` defaults to ``1.25 * eps / steps``
    (the paper's ``alpha = 1`` with ``min(eps + 4, 1.25 eps)`` steps travels ``1.25 eps``).

    Deterministic. Other arguments as in :func:`pgd`.
    """
    check_inputs("bim", model, x, y, threat, target, needs_finite_eps=True)
    _check_norm("bim", threat)
    alpha = step_size if step_size is not None else bim_step(threat.eps, steps=steps)
    return _run(model, x.detach(), y, threat, target, steps=steps, step_size=alpha, loss=loss,
                early_stop=early_stop, restarts=1, random_start=False, generator=None,
                coordinates_per_step=coordinates_per_step, compile=compile, precision=precision)


@step_size_rule(pgd_step)
def pgd(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *, target: Tensor | None = None,
        steps: int = 40, step_size: float | None = None, restarts: int = 1,
        random_start: bool = True, loss: LossName = "ce", early_stop: bool = True,
        coordinates_per_step: int | None = None, generator: torch.Generator | None = None,
        compile: bool = False, precision: Precision = "fp32") -> Tensor:
    """PGD, projected gradient descent on the loss (Madry et al., ICLR 2018, eq. 2;
    arXiv:1706.06083), in L∞, L2 and L1.

    Maximises the loss over the ball ∩ domain by ``steps`` steepest-ascent steps of
    ``step_size`` (default ``2.5 * eps / steps``, Madry et al.), each projected exactly, from a
    volume-uniform random start. L1 steps move the ``coordinates_per_step`` largest-gradient
    coordinates (default 1% of them; Tramèr and Boneh, NeurIPS 2019). ``restarts`` runs the
    attack again, from new random starts, on the samples still robust (all of them when
    ``early_stop=False``, keeping the highest-loss run).

    Args:
        loss: ``"ce"``, ``"margin"`` (C&W f6 on logits) or ``"dlr"``.
        early_stop: freeze each sample at its first (repaired) success. ``False`` returns every
            sample's highest-loss iterate, which is what adversarial training wants.
        compile, precision: how the gradient passes run (:mod:`advlab.accelerate`:
            ``torch.compile``, ``"bf16"``/``"fp16"`` autocast); successes are always decided by
            the float32 model.
        Others: see :mod:`advlab.attacks.common`.

    Returns:
        ``x_adv`` inside ``threat``, same shape, dtype and device as ``x``.
    """
    check_inputs("pgd", model, x, y, threat, target, needs_finite_eps=True)
    _check_norm("pgd", threat)
    if steps < 1 or restarts < 1:
        raise ValueError(f"pgd: steps and restarts must be >= 1, got {steps}, {restarts}")
    alpha = step_size if step_size is not None else pgd_step(threat.eps, steps=steps)
    return _run(model, x.detach(), y, threat, target, steps=steps, step_size=alpha, loss=loss,
                early_stop=early_stop, restarts=restarts, random_start=random_start,
                generator=generator, coordinates_per_step=coordinates_per_step, compile=compile,
                precision=precision)


def _check_norm(name: str, threat: ThreatModel) -> None:
    if threat.norm == "l0":
        raise ValueError(f"{name}: L0 has no steepest-ascent step; use jsma for L0 threats")


def _run(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, target: Tensor | None, *,
         steps: int, step_size: float, loss: str, early_stop: bool, restarts: int,
         random_start: bool, generator: torch.Generator | None,
         coordinates_per_step: int | None, compile: bool, precision: Precision) -> Tensor:
    get_loss(loss)
    pass_ = gradient_pass(model, loss, compile=compile, precision=precision, device=x.device)
    out, best = x.clone(), torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    with eval_mode(model):
        for _ in range(restarts):
            idx = (~done).nonzero()[:, 0] if early_stop else torch.arange(len(x), device=x.device)
            if idx.numel() == 0:
                break
            x_i, y_i, t_i = x[idx], y[idx], index_or_none(target, idx)
            start = threat.random_point(x_i, generator, relax=True) if random_start else x_i
            x_r, loss_r, succ_r = iterate(pass_, x_i, y_i, t_i, threat, start, steps=steps,
                                          step_size=step_size, early_stop=early_stop,
                                          coordinates_per_step=coordinates_per_step)
            better = succ_r | (loss_r > best[idx]) if not early_stop else torch.ones_like(succ_r)
            out[idx] = torch.where(expand_as_batch(better, x_r), x_r, out[idx])
            best[idx] = torch.where(better, loss_r, best[idx])
            done[idx] |= succ_r
    return out.detach()

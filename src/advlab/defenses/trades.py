"""TRADES' inner maximisation (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, ICML 2019,
arXiv:1901.08573, Alg. 1): the point of the threat model whose prediction diverges most from the
clean one. :mod:`advlab.defenses.adversarial_training` uses it for ``method="trades"``; it has
the signature of an attack, so it can also be run on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from advlab import norms
from advlab.attacks.common import movable, step_size_rule
from advlab.attacks.fgsm_pgd import pgd_step
from advlab.models.wrappers import eval_mode
from advlab.threat import ThreatModel

__all__ = ["robust_kl", "trades_kl"]


def robust_kl(logits_adv: Tensor, p_clean: Tensor, *,
              reduction: Literal["sum", "batchmean"] = "batchmean") -> Tensor:
    """TRADES' robust term ``KL(f(x) || f(x'))`` (Zhang et al. 2019, eq. 5), from the logits of
    ``x'`` and the clean probabilities ``f(x)``: the inner maximisation's objective and the
    training loss's regulariser."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), p_clean, reduction=reduction)


@step_size_rule(pgd_step)
def trades_kl(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, threat: ThreatModel, *,
              steps: int = 10, step_size: float | None = None,
              random_start: Literal["normal", "uniform"] = "normal",
              generator: torch.Generator | None = None) -> Tensor:
    """TRADES inner maximisation (Zhang et al., ICML 2019, Alg. 1; arXiv:1901.08573).

    Maximises ``KL(f(x) || f(x'))`` over the threat by ``steps`` steepest-ascent steps of
    ``step_size`` (default ``2.5·eps/steps``), each projected onto ball ∩ relaxed domain
    (``threat.project(relax=True)``), from ``x + 0.001·N(0, I)`` (the paper's start; ``"uniform"``:
    a volume-uniform point of the ball). ``y`` is unused: the loss needs no label.

    Returns:
        ``x'`` inside ``threat`` (discrete features repaired), detached, shaped like ``x``.
    """
    if not threat.bounded or threat.norm == "l0":
        raise ValueError(f"trades_kl: needs a finite L∞, L2 or L1 threat, got {threat.norm} "
                         f"eps={threat.eps}")
    if steps < 1:
        raise ValueError(f"trades_kl: steps must be >= 1, got {steps}")
    alpha = step_size if step_size is not None else pgd_step(threat.eps, steps=steps)
    x = x.detach()
    lo, hi = threat.delta_bounds(x)
    k = max(1, x[0].numel() // 100) if threat.norm == "l1" else 1
    with eval_mode(model), torch.enable_grad():
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        if random_start == "normal":
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x_adv = threat.project(x + 0.001 * noise, x, relax=True)
        else:
            x_adv = threat.random_point(x, generator, relax=True)
        for _ in range(steps):
            x_req = x_adv.detach().requires_grad_(True)
            kl = robust_kl(model(x_req), p_clean, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_req)
            d = norms.steepest_ascent(movable(grad, x_adv - x, lo, hi), threat.norm, k=k)
            x_adv = threat.project(x_adv + alpha * d, x, relax=True).detach()
    return threat.project(x_adv, x).detach()

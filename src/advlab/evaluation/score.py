"""The one scoring rule for every attack.

A perturbed input counts as a success when the model is fooled (misclassified, or classified as
the target when one is given) *and* it lies in the threat model: inside the ball around the clean
input and inside the domain. Every attack in advlab is scored by :func:`score`, whatever it
claims about itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from advlab import norms
from advlab.losses import is_success, margin
from advlab.models.wrappers import eval_mode
from advlab.threat import ThreatModel


@dataclass(frozen=True)
class Score:
    """Per-sample results, each a tensor of shape ``(N,)``.

    ``success`` = ``fooled & in_threat``; ``margin`` is the C&W margin on the adversarial logits
    (positive when fooled; for targeted attacks, the target's lead); ``clean_correct`` says
    whether the clean input was classified correctly.
    """

    success: Tensor
    fooled: Tensor
    in_threat: Tensor
    in_domain: Tensor
    clean_correct: Tensor
    margin: Tensor
    l0: Tensor
    l1: Tensor
    l2: Tensor
    linf: Tensor

    def summary(self) -> dict[str, float]:
        """Rates and medians as plain floats (for reports and JSON)."""
        ok = self.success
        out = {"success_rate": _mean(ok), "fooled_rate": _mean(self.fooled),
               "in_threat_rate": _mean(self.in_threat), "clean_accuracy": _mean(self.clean_correct),
               "robust_accuracy": _mean(self.clean_correct & ~ok)}
        for name in ("l0", "l1", "l2", "linf"):
            values = getattr(self, name)[ok]
            out[f"median_{name}"] = float(values.median()) if values.numel() else float("nan")
        return out


def _mean(t: Tensor) -> float:
    return float(t.float().mean()) if t.numel() else float("nan")


@torch.no_grad()
def score(model: torch.nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, threat: ThreatModel,
          target: Tensor | None = None, *, batch_size: int = 1024) -> Score:
    """Score adversarial inputs ``x_adv`` for clean inputs ``x`` with labels ``y``.

    Args:
        model: returns logits. x, x_adv: ``(N, *D)``. y, target: int64 ``(N,)``.
        threat: the threat model the attack was run under.
        batch_size: forward passes are chunked to bound memory.

    Returns:
        A :class:`Score` of per-sample tensors on ``x``'s device.
    """
    if x_adv.shape != x.shape:
        raise ValueError(f"score: x_adv has shape {tuple(x_adv.shape)}, x {tuple(x.shape)}")
    if y.shape != (x.shape[0],) or (target is not None and target.shape != y.shape):
        raise ValueError(f"score: y (and target) must have shape ({x.shape[0]},)")
    clean, adv = [], []
    with eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            clean.append(model(x[start:start + batch_size]))
            adv.append(model(x_adv[start:start + batch_size]))
    logits, logits_adv = torch.cat(clean), torch.cat(adv)
    fooled = is_success(logits_adv, y, target)
    in_threat = threat.contains(x_adv, x)
    delta = x_adv - x
    return Score(success=fooled & in_threat, fooled=fooled, in_threat=in_threat,
                 in_domain=threat.domain.contains(x_adv, x),
                 clean_correct=logits.argmax(1) == y, margin=margin(logits_adv, y, target),
                 **{p: norms.norm(delta, p) for p in norms.NORMS})

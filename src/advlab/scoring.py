"""The one scoring rule for every attack, and the one way to call an attack.

A perturbed input counts as a success when the model is fooled (misclassified, or classified as
the target when one is given) *and* it lies in the threat model: inside the ball around the clean
input and inside the domain. Every attack in advlab is scored by :func:`score`, whatever it
claims about itself.

:func:`call_attack` is how every caller that is handed an attack (adversarial training, the
evaluation runner, transfer, retraining, robust features) runs it: the generator is passed when
the attack takes one and has not bound its own, a target when one is given, and the output is
checked and detached.

This module sits at the attacks' level of the layers (docs/architecture.md): it needs only the
geometry, the losses, the threat model and the model wrappers, so attacks, defenses,
explanations and the evaluation all use it without importing one another.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def takes_generator(attack: Callable[..., Any]) -> bool:
    """Whether ``attack`` accepts a ``generator`` keyword that a ``functools.partial`` has not
    already bound (a bound generator is the caller's choice and is kept)."""
    if isinstance(attack, functools.partial) and "generator" in attack.keywords:
        return False
    try:
        params = inspect.signature(attack).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def call_attack(attack: Callable[..., Tensor], model: Callable[[Tensor], Tensor], x: Tensor,
                y: Tensor, threat: ThreatModel, *, target: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """Run a configured attack the one way every caller does.

    ``generator`` is passed when the attack takes one (:func:`takes_generator`), ``target`` when
    it is given. Raises ``ValueError`` when the attack returns anything but a tensor of ``x``'s
    shape. Returns the adversarial inputs, detached.
    """
    kwargs: dict[str, Any] = {}
    if target is not None:
        kwargs["target"] = target
    if generator is not None and takes_generator(attack):
        kwargs["generator"] = generator
    x_adv = attack(model, x, y, threat, **kwargs)
    if not isinstance(x_adv, Tensor) or x_adv.shape != x.shape:
        name = getattr(getattr(attack, "func", attack), "__name__", type(attack).__name__)
        raise ValueError(f"attack {name} returned {getattr(x_adv, 'shape', type(x_adv))}, "
                         f"expected a tensor of shape {tuple(x.shape)}")
    return x_adv.detach()


def accuracy_under_attack(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                          threat: ThreatModel, attack: Callable[..., Tensor], *,
                          generator: torch.Generator | None = None,
                          batch_size: int = 500) -> tuple[float, float]:
    """Clean and robust accuracy of ``model`` on ``(x, y)`` under ``attack`` within ``threat``.

    Robust means classified correctly and not successfully attacked (:func:`score`). The attack
    runs on chunks of ``batch_size`` rows, all drawing from the one ``generator``.
    """
    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"accuracy_under_attack: need as many labels as inputs (> 0), got "
                         f"{x.shape[0]} and {y.shape[0]}")
    clean = robust = 0
    for s in range(0, x.shape[0], batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        sc = score(model, xb, yb, call_attack(attack, model, xb, yb, threat,  # type: ignore[arg-type]
                                              generator=generator), threat)
        clean += int(sc.clean_correct.sum())
        robust += int((sc.clean_correct & ~sc.success).sum())
    return clean / x.shape[0], robust / x.shape[0]

"""Attack losses, success, and the one way attacks take gradients.

Every loss here is per-sample and is to be *maximised* by the attacker, for untargeted and
targeted attacks alike, so an attack never branches on the sign:

* ``cross_entropy``: ``CE(z, y)`` untargeted; ``-CE(z, t)`` targeted.
* ``margin``: the C&W margin on logits (Carlini and Wagner, S&P 2017, objective f6):
  ``max_{j != y} z_j - z_y`` untargeted; ``z_t - max_{j != t} z_j`` targeted. Positive exactly when
  the attack has succeeded.
* ``dlr``: the difference-of-logits ratio of Croce and Hein (ICML 2020, arXiv:2003.01690,
  eqs. 5 and 6), scale invariant: ``(max_{j != y} z_j - z_y) / (z_pi1 - z_pi3)`` untargeted;
  ``(z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` targeted (``pi`` sorts the logits in decreasing
  order; with fewer classes the missing ranks fall back to the lowest one).

``logits_and_grad`` uses ``torch.autograd.grad``, never ``.backward()``: the model's parameters'
``.grad`` stay untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from advlab.models import batching

LossName = Literal["ce", "margin", "dlr"]
Model = Callable[[Tensor], Tensor]


def _other_max(logits: Tensor, cls: Tensor) -> Tensor:
    """Largest logit among the classes other than ``cls``."""
    masked = logits.masked_fill(F.one_hot(cls, logits.shape[1]).bool(), float("-inf"))
    return masked.amax(dim=1)


def cross_entropy(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def margin(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    if target is None:
        return _other_max(logits, y) - logits.gather(1, y[:, None])[:, 0]
    return logits.gather(1, target[:, None])[:, 0] - _other_max(logits, target)


def dlr(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    top = logits.sort(dim=1, descending=True).values
    k = logits.shape[1]
    if target is None:
        scale = (top[:, 0] - top[:, 2]).clamp_min(1e-12) if k > 2 else \
            (top[:, 0] - top[:, 1]).abs().clamp_min(1e-12)
        return margin(logits, y, target) / scale
    third, fourth = top[:, min(2, k - 1)], top[:, min(3, k - 1)]
    scale = (top[:, 0] - (third + fourth) / 2).clamp_min(1e-12)
    gap = logits.gather(1, target[:, None])[:, 0] - logits.gather(1, y[:, None])[:, 0]
    return gap / scale


LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor | None], Tensor]] = {
    "ce": cross_entropy, "margin": margin, "dlr": dlr}


def get_loss(name: str) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    return LOSSES[name]


def is_success(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    """Per-sample bool: misclassified (untargeted) or classified as ``target`` (targeted)."""
    pred = logits.argmax(dim=1)
    return pred != y if target is None else pred == target


def logits_and_grad(model: Model, x: Tensor, y: Tensor, *, loss: str = "ce",
                    target: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Forward and backward in one call: ``(logits, per-sample loss, d loss / d x)``.

    The gradient is of the *sum* of per-sample losses, i.e. each sample's own gradient. All
    three outputs are detached. On the CPU, a batch whose saved activations would exceed
    :data:`advlab.models.batching.CHUNK_BYTES` runs in row chunks (same per-row results, no
    page-faulting of fresh activations; see :mod:`advlab.models.batching`).
    """
    fn = get_loss(loss)

    def one_pass(xs: Tensor, ys: Tensor, ts: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        with torch.enable_grad():
            x_req = xs.detach().requires_grad_(True)
            logits = model(x_req)
            values = fn(logits, ys, ts)
            (grad,) = torch.autograd.grad(values.sum(), x_req)
        return logits.detach(), values.detach(), grad

    return batching.map_rows(model, one_pass, x, y, target)  # type: ignore[return-value]

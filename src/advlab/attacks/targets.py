"""Target classes for targeted attacks: ``random``, ``least_likely`` and ``next``.

Each returns an int64 tensor ``(N,)`` of classes different from ``y``, to pass as ``target=``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from advlab.models.wrappers import eval_mode


def random(y: Tensor, num_classes: int, *, generator: torch.Generator | None = None) -> Tensor:
    """A class drawn uniformly among the ``num_classes - 1`` wrong ones."""
    if num_classes < 2:
        raise ValueError(f"targets.random: need at least 2 classes, got {num_classes}")
    offset = torch.randint(1, num_classes, y.shape, generator=generator,
                           device=y.device if generator is None else generator.device)
    return (y + offset.to(y.device)) % num_classes


def next(y: Tensor, num_classes: int) -> Tensor:  # noqa: A001 - the conventional name
    """The next class, ``(y + 1) mod num_classes`` (Carlini and Wagner's "next" target)."""
    return (y + 1) % num_classes


@torch.no_grad()
def least_likely(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> Tensor:
    """The class with the lowest logit (Kurakin et al. 2017's "least likely" target), never y."""
    with eval_mode(model):
        logits = model(x)
    return logits.scatter(1, y[:, None], float("inf")).argmin(dim=1)


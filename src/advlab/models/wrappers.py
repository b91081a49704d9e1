"""Small composable model wrappers: input normalisation, an eval-mode guard, a logits check."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn


class Normalize(nn.Module):
    """``(x - mean) / std`` as the first layer of a model, so attacks work in input space."""

    def __init__(self, mean: float | Sequence[float] | Tensor,
                 std: float | Sequence[float] | Tensor) -> None:
        super().__init__()
        std_t = torch.as_tensor(std, dtype=torch.float32)
        if (std_t <= 0).any():
            raise ValueError(f"Normalize: std must be > 0, got {std_t.tolist()}")
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", std_t)

    def forward(self, x: Tensor) -> Tensor:
        mean, std = self.mean, self.std
        if mean.dim() == 1:  # one value per channel (images) or per feature (tabular)
            shape = (1, -1) + (1,) * (x.dim() - 2)
            mean, std = mean.view(shape), std.view(shape)
        return (x - mean) / std


@contextmanager
def eval_mode(model: Any) -> Iterator[Any]:
    """Put ``model`` (and every submodule) in eval mode for the block, then restore each
    submodule's own mode, so an attack never leaves a trace on ``model.training``. A plain
    callable that is not an ``nn.Module`` passes through unchanged."""
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    if not any(mode for _, mode in modes):  # already in eval mode: nothing to switch back
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def looks_like_probabilities(outputs: Tensor, atol: float = 1e-4) -> bool:
    """True when every row is non-negative and sums to 1: softmax outputs, not logits."""
    if outputs.dim() != 2 or outputs.shape[1] < 2 or outputs.numel() == 0:
        return False
    return bool(outputs.min() >= 0) and bool(((outputs.sum(dim=1) - 1).abs() <= atol).all())


def check_logits(outputs: Tensor, *, where: str = "model") -> None:
    """Warn when ``outputs`` look like probabilities: advlab's losses expect logits, and
    gradients through a saturated softmax vanish (a classic cause of gradient masking)."""
    if looks_like_probabilities(outputs):
        warnings.warn(f"{where} outputs look like probabilities (rows are >= 0 and sum to 1); "
                      "advlab expects logits: remove the final softmax", stacklevel=2)


class QueryCounter(nn.Module):
    """Count what an attack costs: forward evaluations and gradient evaluations, per sample.

    ``forwards`` grows by the batch size at each call; ``gradients`` by the batch size each time a
    backward pass reaches the model's output (a batched vector-Jacobian product, as DeepFool and
    JSMA use, counts once per sample). ``calls`` counts forward calls. ``reset()`` zeroes them.
    A pass that runs the wrapped model itself (a compiled pass, :mod:`advlab.accelerate`)
    reports its rows with :meth:`record`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.forwards = 0
        self.gradients = 0
        self.calls = 0

    def reset(self) -> None:
        self.forwards = self.gradients = self.calls = 0

    def record(self, rows: int, *, gradient: bool = False) -> None:
        """Count one forward call of ``rows`` rows (and their gradients, with ``gradient``)."""
        self.forwards += rows
        self.calls += 1
        if gradient:
            self.gradients += rows

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        n = int(x.shape[0])
        self.record(n)
        if out.requires_grad:
            out.register_hook(lambda grad: self._count_gradient(n))
        return out

    def _count_gradient(self, n: int) -> None:
        self.gradients += n

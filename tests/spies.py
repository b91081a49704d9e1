"""Test doubles shared by the test modules (``tests`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Spy(nn.Module):
    """Wraps a model: counts the rows it evaluates and its calls, and records at each call
    whether autograd could reach the model (grad enabled, or an input that requires grad)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.rows = 0
        self.calls = 0
        self.grad_enabled: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.rows += x.shape[0]
        self.calls += 1
        self.grad_enabled.append(torch.is_grad_enabled() or x.requires_grad)
        return self.model(x)

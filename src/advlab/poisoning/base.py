"""What every poisoning attack shares: the :class:`Poisoned` result and the argument checks.

Conventions, documented once here:

* A poisoning attack is a pure function of the training set ``(x, y)`` (and, where the attacker
  knows it, of the learner and a validation set). It never mutates its inputs.
* It returns :class:`Poisoned`: the whole poisoned training set and the ``indices`` of the rows
  that it changed (label flipping, backdoors) or added (injection, appended at the end). Every
  other row is bit-identical to the input.
* Every random choice comes from ``generator`` (a ``torch.Generator``); the same seed gives the
  same poisoned set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Poisoned:
    """A poisoned training set.

    Attributes:
        x: ``(N', *D)`` inputs: the clean rows, with the changed rows edited in place and any
            injected rows appended after them (``N' = N + number injected``).
        y: ``(N',)`` int64 labels.
        indices: int64, sorted: the rows of ``x``/``y`` that the attack changed or added.
        kind: ``"label_flip"``, ``"injection"`` or ``"backdoor"``.
        info: JSON-serialisable details (attack name, knobs, per-point losses...).
    """

    x: Tensor
    y: Tensor
    indices: Tensor
    kind: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def mask(self) -> Tensor:
        """Boolean ``(N',)`` mask of the poisoned rows."""
        m = torch.zeros(self.y.shape[0], dtype=torch.bool, device=self.y.device)
        m[self.indices] = True
        return m

    @property
    def n_poisoned(self) -> int:
        return int(self.indices.numel())


def check_training_set(name: str, x: Tensor, y: Tensor) -> None:
    """Raise ``ValueError`` naming the attack when ``(x, y)`` is not a labelled training set."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        shape = tuple(getattr(x, "shape", ()))
        raise ValueError(f"{name}: x must be a floating tensor (N, *D), got "
                         f"{getattr(x, 'dtype', type(x))} of shape {shape}")
    if not isinstance(y, Tensor) or y.dtype != torch.long or y.shape != (x.shape[0],):
        raise ValueError(f"{name}: y must be int64 of shape ({x.shape[0]},), got "
                         f"{getattr(y, 'dtype', type(y))} {tuple(getattr(y, 'shape', ()))}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: the training set is empty")
    if bool((y < 0).any()):
        raise ValueError(f"{name}: y has negative labels (min {int(y.min())})")
    if not bool(torch.isfinite(x).all()):
        i = int((~torch.isfinite(x.flatten(1))).any(1).nonzero()[0, 0])
        raise ValueError(f"{name}: x has non-finite values (first in row {i})")


def check_rate(name: str, rate: float) -> None:
    if not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"{name}: rate must lie in [0, 1], got {rate!r}")


def check_class(name: str, label: str, value: int, num_classes: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
        raise ValueError(f"{name}: {label} must be a class index in [0, {num_classes}), got "
                         f"{value!r}")


def count(rate: float, n: int) -> int:
    """The number of rows a rate poisons: ``round(rate * n)`` (0.5 rounds half to even)."""
    return int(round(float(rate) * n))


def num_classes_of(y: Tensor, num_classes: int | None) -> int:
    k = int(y.max()) + 1
    if num_classes is None:
        return max(k, 2)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if num_classes < k:
        raise ValueError(f"num_classes={num_classes} but y holds class {k - 1}")
    return num_classes


def sample_without_replacement(pool: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """``k`` distinct entries of the 1-D ``pool``, sorted."""
    if k > pool.numel():
        raise ValueError(f"cannot choose {k} rows from {pool.numel()} candidates")
    order = torch.randperm(pool.numel(), generator=generator, device="cpu").to(pool.device)
    return pool[order[:k]].sort().values

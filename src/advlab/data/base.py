"""The dataset container every loader returns; :class:`~advlab.errors.DataFormatError` (the
error type for malformed files) is re-exported from :mod:`advlab.errors`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from advlab.domain import Domain
from advlab.errors import DataFormatError

__all__ = ["DataFormatError", "Dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test tensors with the input :class:`~advlab.domain.Domain` and names.

    ``x_*`` are float32 ``(N, *D)`` inside ``domain``; ``y_*`` are int64 class indices ``(N,)``.
    ``info`` records where the data came from and how it was preprocessed (it goes into model
    sidecars, so a model folder says what it was trained on).
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    domain: Domain
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"{self.name}: x_{split} has {x.shape[0]} rows, y_{split} "
                                 f"{y.shape[0]}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.class_names)):
                raise ValueError(f"{self.name}: y_{split} has labels outside "
                                 f"[0, {len(self.class_names)})")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train(self) -> tuple[Tensor, Tensor]:
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[Tensor, Tensor]:
        return self.x_test, self.y_test

    def summary(self) -> dict[str, Any]:
        """Shapes and class balance, for ``advlab datasets`` and reports."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "classes": list(self.class_names),
            "train": int(self.x_train.shape[0]),
            "test": int(self.x_test.shape[0]),
            "train_class_counts": torch.bincount(self.y_train, minlength=self.num_classes).tolist(),
        }

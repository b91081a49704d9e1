"""Backdoor triggers: a pattern stamped on an input, after Gu, Dolan-Gavitt and Garg, "BadNets:
Identifying Vulnerabilities in the Machine Learning Model Supply Chain", 2017 (arXiv:1708.06733).

* :class:`PatchTrigger`: a small square patch in a corner of an image (BadNets' pattern and
  single-pixel backdoors on MNIST, Sect. 3).
* :class:`FeatureTrigger`: for tabular data, chosen features set to chosen values. With a
  :class:`~advlab.domain.Domain`, setting a one-hot feature to 1 clears the rest of its group,
  and the triggered points are checked against the domain, so the trigger never produces an
  input that the real feature space could not hold.

A trigger is a frozen dataclass with ``apply(x) -> x_triggered`` (a new tensor; ``x`` is not
modified) and ``check(x, domain)``, which raises a ``ValueError`` naming the offending feature
when the triggered points leave the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from advlab.domain import Domain

Corner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]


@dataclass(frozen=True)
class PatchTrigger:
    """A ``size`` × ``size`` patch, ``margin`` pixels from a corner, on every channel.

    ``pattern="checkerboard"`` alternates ``value`` and ``1 - value`` (BadNets' pattern
    backdoor); ``"solid"`` fills the patch with ``value``. Inputs are ``(N, C, H, W)``.
    """

    size: int = 3
    value: float = 1.0
    pattern: Literal["checkerboard", "solid"] = "checkerboard"
    corner: Corner = "bottom-right"
    margin: int = 1

    def __post_init__(self) -> None:
        if self.size < 1 or self.margin < 0:
            raise ValueError(f"PatchTrigger: size must be >= 1 and margin >= 0, got "
                             f"{self.size}, {self.margin}")
        if self.pattern not in ("checkerboard", "solid"):
            raise ValueError(f"PatchTrigger: pattern must be 'checkerboard' or 'solid', got "
                             f"{self.pattern!r}")
        if self.corner not in ("bottom-right", "bottom-left", "top-right", "top-left"):
            raise ValueError(f"PatchTrigger: unknown corner {self.corner!r}")

    def _slices(self, h: int, w: int) -> tuple[slice, slice]:
        if self.size + self.margin > min(h, w):
            raise ValueError(f"PatchTrigger: a {self.size}-pixel patch {self.margin} pixels from "
                             f"the edge does not fit a {h}×{w} image")
        top = self.corner.startswith("top")
        left = self.corner.endswith("left")
        r0 = self.margin if top else h - self.margin - self.size
        c0 = self.margin if left else w - self.margin - self.size
        return slice(r0, r0 + self.size), slice(c0, c0 + self.size)

    def patch(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The ``size`` × ``size`` patch values."""
        if self.pattern == "solid":
            return torch.full((self.size, self.size), float(self.value), dtype=dtype)
        i = torch.arange(self.size)
        even = ((i[:, None] + i[None, :]) % 2 == 0)
        return torch.where(even, float(self.value), 1.0 - float(self.value)).to(dtype)

    def apply(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"PatchTrigger: inputs must be images (N, C, H, W), got shape "
                             f"{tuple(x.shape)}")
        rows, cols = self._slices(x.shape[2], x.shape[3])
        out = x.clone()
        out[:, :, rows, cols] = self.patch(x.dtype).to(x.device)
        return out

    def check(self, x: Tensor, domain: Domain) -> None:
        check_triggered(self, x, domain)


@dataclass(frozen=True)
class FeatureTrigger:
    """Set chosen features (indices of the flattened input) to chosen values.

    With ``domain`` given (to :meth:`apply` or via :meth:`for_domain`), a one-hot feature set to
    1 clears the other members of its group, and setting a one-hot feature to 0 is refused
    (the group would lose its hot entry or keep it elsewhere, unpredictably).
    """

    values: Mapping[int, float]
    domain: Domain | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("FeatureTrigger: values is empty")
        for j in self.values:
            if not isinstance(j, int) or j < 0:
                raise ValueError(f"FeatureTrigger: feature indices must be ints >= 0, got {j!r}")
        if self.domain is not None:
            n = self.domain.n_features
            bad = [j for j in self.values if n is not None and j >= n]
            if bad:
                raise ValueError(f"FeatureTrigger: feature {bad[0]} does not exist (the domain "
                                 f"has {n} features)")
            for j, v in self.values.items():
                for g in self.domain.one_hot_groups:
                    if j in g and float(v) not in (0.0, 1.0):
                        raise ValueError(f"FeatureTrigger: feature {j} is one-hot; its value must "
                                         f"be 0 or 1, got {v}")
                    if j in g and float(v) == 0.0:
                        raise ValueError(f"FeatureTrigger: feature {j} is one-hot; set the group "
                                         "member you want to 1 instead of clearing one to 0")

    @classmethod
    def by_name(cls, domain: Domain, values: Mapping[str, float]) -> FeatureTrigger:
        """Build from feature names (``domain.feature_names``), e.g. ``{"service=tftp_u": 1}``."""
        names = domain.feature_names
        if names is None:
            raise ValueError("FeatureTrigger.by_name: the domain has no feature_names")
        index = {n: i for i, n in enumerate(names)}
        unknown = [n for n in values if n not in index]
        if unknown:
            raise ValueError(f"FeatureTrigger.by_name: unknown feature {unknown[0]!r}")
        return cls({index[n]: float(v) for n, v in values.items()}, domain)

    def apply(self, x: Tensor) -> Tensor:
        flat = x.detach().flatten(1).clone()
        top = max(self.values)
        if top >= flat.shape[1]:
            raise ValueError(f"FeatureTrigger: feature {top} does not exist in inputs with "
                             f"{flat.shape[1]} features")
        if self.domain is not None:
            for j, v in self.values.items():
                for g in self.domain.one_hot_groups:
                    if j in g and v == 1.0:
                        flat[:, list(g)] = 0.0
        idx = torch.tensor(list(self.values), device=flat.device)
        flat[:, idx] = torch.tensor([float(v) for v in self.values.values()],
                                    dtype=flat.dtype, device=flat.device)
        return flat.reshape(x.shape)

    def check(self, x: Tensor, domain: Domain) -> None:
        check_triggered(self, x, domain)


Trigger = PatchTrigger | FeatureTrigger


def check_triggered(trigger: PatchTrigger | FeatureTrigger, x: Tensor, domain: Domain) -> None:
    """Raise ``ValueError`` (naming the sample, feature and rule) when ``trigger.apply(x)`` leaves
    ``domain``. Immutable features are checked against ``x`` itself."""
    domain.validate(trigger.apply(x), x0=x, name=f"{type(trigger).__name__}: triggered x")


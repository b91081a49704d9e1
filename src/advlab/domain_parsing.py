"""Construction-time parsing and checks of a :class:`advlab.domain.Domain`'s arguments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

Kind = Literal["continuous", "integer", "binary"]
KINDS: tuple[Kind, ...] = ("continuous", "integer", "binary")


def as_vector(value: float | Sequence[float] | Tensor, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    if t.dim() > 1:
        t = t.reshape(-1)
    if torch.isnan(t).any():
        raise ValueError(f"Domain: {name} contains NaN")
    return t


def index_mask(indices: Sequence[int] | Tensor, n: int | None, name: str) -> Tensor | None:
    idx = torch.as_tensor(list(indices) if not isinstance(indices, Tensor) else indices)
    if idx.numel() == 0:
        return None
    if idx.dtype == torch.bool:
        if n is not None and idx.numel() != n:
            raise ValueError(f"Domain: {name} mask has {idx.numel()} entries, expected {n}")
        return idx.reshape(-1).clone()
    if n is None:
        raise ValueError(f"Domain: {name} given as indices needs n_features or tensor bounds")
    idx = idx.long().reshape(-1)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.numel():
        raise ValueError(f"Domain: {name} index {int(bad[0])} is out of range for {n} features")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    return mask


def parse_kinds(kinds: Sequence[Kind] | dict[int, Kind] | None, n: int | None) -> Tensor | None:
    """Kind codes per feature (None when every feature is continuous)."""
    if kinds is None:
        return None
    if n is None:
        raise ValueError("Domain: kinds need n_features or per-feature bounds")
    items = kinds.items() if isinstance(kinds, dict) else enumerate(kinds)
    if not isinstance(kinds, dict) and len(kinds) != n:
        raise ValueError(f"Domain: {len(kinds)} kinds for {n} features")
    codes = torch.zeros(n, dtype=torch.int8)
    for i, kind in items:
        if not 0 <= int(i) < n:
            raise ValueError(f"Domain: kinds index {i} is out of range for {n} features")
        if kind not in KINDS:
            raise ValueError(
                f"Domain: kind of feature {i} must be one of {KINDS}, got {kind!r}")
        codes[int(i)] = KINDS.index(kind)
    return codes if codes.any() else None

def check_groups(groups: tuple[tuple[int, ...], ...], n: int | None, lower: Tensor,
                 upper: Tensor, inc: Tensor | None, dec: Tensor | None,
                 name: Callable[[int], str]) -> None:
    """Raise ValueError unless the one-hot groups are disjoint, in range, [0, 1] and free."""
    seen: set[int] = set()
    for g in groups:
        if len(g) < 2:
            raise ValueError(f"Domain: one-hot group {g} needs at least two features")
        if n is None:
            raise ValueError("Domain: one_hot_groups need n_features or per-feature bounds")
        for i in g:
            if not 0 <= i < n:
                raise ValueError(f"Domain: one-hot index {i} is out of range for {n} features")
            if i in seen:
                raise ValueError(f"Domain: feature {name(i)} is in two one-hot groups")
            seen.add(i)
            if float(lower[i]) != 0.0 or float(upper[i]) != 1.0:
                raise ValueError(f"Domain: one-hot feature {name(i)} needs bounds [0, 1]")
            if any(m is not None and bool(m[i]) for m in (inc, dec)):
                raise ValueError(
                    f"Domain: one-hot feature {name(i)} cannot be monotone (changing a "
                    "category always decreases one indicator); mark the group immutable "
                    "instead")

def group_tensor(groups: tuple[tuple[int, ...], ...]) -> Tensor | None:
    if not groups:
        return None
    width = max(len(g) for g in groups)
    index = torch.full((len(groups), width), -1, dtype=torch.long)
    for k, g in enumerate(groups):
        index[k, : len(g)] = torch.tensor(g)
    return index


"""The valid input space of a model: bounds and the feature constraints of security data.

An image lives in a box ``[0, 1]^D``. A network-flow record or an Android feature vector does
not: it has integer counts, binary flags, one-hot encoded categories, features an attacker
cannot change (the protocol of a connection) and features that can only grow (an app can gain a
permission without breaking, not lose one). :class:`Domain` describes all of these so that every
attack, defense and evaluation in advlab respects them.

Features are indexed in the *flattened* sample, ``x.reshape(len(x), -1)``; for tabular data that
is simply the column index. Every method is batched over the first dimension and keeps the
input's dtype and device.

Two projections are offered:

* :meth:`Domain.clip` is the *convex relaxation*: bounds, immutable and monotone features. This is
  what attacks use while optimising (integer and one-hot features are relaxed to intervals).
* :meth:`Domain.project` is :meth:`clip` followed by the *discrete repair*: integers are rounded
  to their grid, binary features to the nearer of their two values, one-hot groups to the
  one-hot vector nearest in L2 (the arg-max). The result always satisfies :meth:`contains`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from advlab.domain_parsing import (
    KINDS,
    Kind,
    as_vector,
    check_groups,
    group_tensor,
    index_mask,
    parse_kinds,
)

_CONTINUOUS, _INTEGER, _BINARY = 0, 1, 2
_CHUNK_ELEMENTS = 1 << 22  # elements per row chunk in contains/validate (bounds memory)


@dataclass(frozen=True, eq=False)
class Domain:
    """Valid input space: per-feature bounds, kinds, one-hot groups, immutable and monotone
    features.

    Args:
        lower, upper: bounds, a scalar or one value per feature (flattened). Default ``[0, 1]``.
        kinds: one of ``"continuous"``, ``"integer"``, ``"binary"`` per feature, or a dict
            ``{index: kind}`` (others continuous). Integer features lie on the grid
            ``lower + resolution * k``; binary features take exactly ``lower`` or ``upper``.
        resolution: grid step of integer features (default 1). Min-max scaled counts have step
            ``1 / (max - min)``.
        one_hot_groups: index groups of which exactly one feature is 1 and the others 0.
        immutable: indices (or a bool mask) of features an attacker cannot change.
        increase_only, decrease_only: indices (or masks) of monotone features.
        n_features: number of features, needed when every bound is a scalar but masks are given.
        feature_names: names used in error messages.
    """

    lower: float | Sequence[float] | Tensor = 0.0
    upper: float | Sequence[float] | Tensor = 1.0
    kinds: Sequence[Kind] | dict[int, Kind] | None = None
    resolution: float | Sequence[float] | Tensor = 1.0
    one_hot_groups: Sequence[Sequence[int]] = ()
    immutable: Sequence[int] | Tensor = ()
    increase_only: Sequence[int] | Tensor = ()
    decrease_only: Sequence[int] | Tensor = ()
    n_features: int | None = None
    feature_names: Sequence[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        lower, upper = as_vector(self.lower, "lower"), as_vector(self.upper, "upper")
        n = self.n_features
        for t in (lower, upper):
            if t.dim() == 1:
                if n is not None and t.numel() != n:
                    raise ValueError(f"Domain: bounds have {t.numel()} entries, n_features={n}")
                n = t.numel()
        if self.feature_names is not None:
            names = tuple(str(s) for s in self.feature_names)
            if n is not None and len(names) != n:
                raise ValueError(f"Domain: {len(names)} feature_names for {n} features")
            n = len(names)
            set_(self, "feature_names", names)
        if n is not None:
            lower, upper = lower.expand(n).clone(), upper.expand(n).clone()
        bad = (lower > upper).reshape(-1).nonzero()  # reshape: a 0-d nonzero() is always empty
        if bad.numel():
            i = int(bad[0, 0])
            lo = float(lower.reshape(-1)[i])
            hi = float(upper.reshape(-1)[i])
            where = f" for feature {self._name(i)}" if lower.dim() else ""
            raise ValueError(f"Domain: lower > upper{where}: {lo} > {hi}")
        set_(self, "n_features", n)
        set_(self, "lower", lower)
        set_(self, "upper", upper)
        set_(self, "_kind", parse_kinds(self.kinds, n))
        res = as_vector(self.resolution, "resolution")
        if res.dim() == 1 and n is not None and res.numel() != n:
            raise ValueError(f"Domain: resolution has {res.numel()} entries for {n} features")
        if (res <= 0).any():
            raise ValueError(f"Domain: resolution must be > 0, got {res.min().item()}")
        set_(self, "resolution", res.expand(n).clone() if n is not None else res)
        groups = tuple(tuple(int(i) for i in g) for g in self.one_hot_groups)
        set_(self, "one_hot_groups", groups)
        set_(self, "immutable", index_mask(self.immutable, n, "immutable"))
        inc = index_mask(self.increase_only, n, "increase_only")
        dec = index_mask(self.decrease_only, n, "decrease_only")
        set_(self, "increase_only", inc)
        set_(self, "decrease_only", dec)
        check_groups(groups, n, lower, upper, inc, dec, self._name)
        if inc is not None and dec is not None and (inc & dec).any():
            i = int((inc & dec).nonzero()[0, 0])
            raise ValueError(f"Domain: feature {self._name(i)} is both increase- and decrease-only")
        set_(self, "_group_index", group_tensor(groups))
        set_(self, "_finite_bounds", bool(torch.isfinite(lower).all() and
                                          torch.isfinite(upper).all()))
        same = lower.numel() > 0 and bool((lower == lower.reshape(-1)[0]).all() and
                                          (upper == upper.reshape(-1)[0]).all())
        set_(self, "_scalar_bounds", (float(lower.reshape(-1)[0]), float(upper.reshape(-1)[0]))
             if same else None)

    def _name(self, i: int) -> str:
        if self.feature_names is not None and 0 <= i < len(self.feature_names):
            return f"{i} ({self.feature_names[i]!r})"
        return str(i)

    # ------------------------------------------------------------------ properties
    @property
    def is_box(self) -> bool:
        """True when the domain is a plain continuous box (the image case): no discrete features,
        no one-hot groups, no immutable or monotone features."""
        return (self._kind is None and self._group_index is None and self.immutable is None  # type: ignore[attr-defined]
                and self.increase_only is None and self.decrease_only is None)

    def box(self) -> Domain:
        """The bounds alone: the same box, without kinds, groups or immutable and monotone
        features (the unconstrained threat that image-oriented libraries attack)."""
        return Domain(self.lower, self.upper, n_features=self.n_features,
                      feature_names=self.feature_names)

    @property
    def is_discrete(self) -> bool:
        """True when some features are integer, binary or one-hot (need a repair after a step)."""
        return self._kind is not None or self._group_index is not None  # type: ignore[attr-defined]

    def kind_mask(self, kind: Kind) -> Tensor | None:
        """Bool mask of the features of one kind (``None`` when the domain has no kinds)."""
        codes: Tensor | None = self._kind  # type: ignore[attr-defined]
        return None if codes is None else codes == KINDS.index(kind)

    # ------------------------------------------------------------------ internals
    def _flat(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ValueError(f"Domain: expected a batch (N, *D), got shape {tuple(x.shape)}")
        flat = x.flatten(1)
        if self.n_features is not None and flat.shape[1] != self.n_features:
            raise ValueError(
                f"Domain: samples have {flat.shape[1]} features (shape {tuple(x.shape)}), "
                f"the domain has {self.n_features}")
        return flat

    def _like(self, t: Tensor | None, x: Tensor) -> Tensor | None:
        return None if t is None else t.to(device=x.device, dtype=x.dtype)

    def _mask(self, t: Tensor | None, x: Tensor) -> Tensor | None:
        return None if t is None else t.to(device=x.device)

    def bounds(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Lower and upper bounds as tensors broadcastable against the flattened ``x``."""
        lo, hi = self._like(self.lower, x), self._like(self.upper, x)  # type: ignore[arg-type]
        assert lo is not None and hi is not None
        return lo, hi

    @property
    def scalar_bounds(self) -> tuple[float, float] | None:
        """``(lower, upper)`` as floats when every feature shares them, else ``None``: a clamp to
        Python scalars is several times cheaper than one that broadcasts bound tensors."""
        return self._scalar_bounds  # type: ignore[attr-defined,no-any-return]

    def delta_bounds(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """Per-coordinate bounds ``lo <= delta <= hi`` of a perturbation of ``x0``.

        Folds in bounds, immutable features (``lo = hi = 0``) and monotone features
        (``lo = 0`` for increase-only, ``hi = 0`` for decrease-only). The box contains 0 when
        ``x0`` is valid. Returns two tensors of ``x0``'s shape.
        """
        flat = self._flat(x0)
        lo_b, hi_b = self.bounds(flat)
        lo, hi = lo_b - flat, hi_b - flat
        zero = torch.zeros((), dtype=flat.dtype, device=flat.device)
        for mask, fix_lo, fix_hi in ((self.immutable, True, True),
                                     (self.increase_only, True, False),
                                     (self.decrease_only, False, True)):
            m = self._mask(mask, flat)  # type: ignore[arg-type]
            if m is None:
                continue
            if fix_lo:
                lo = torch.where(m, torch.maximum(lo, zero), lo)
            if fix_hi:
                hi = torch.where(m, torch.minimum(hi, zero), hi)
        return lo.reshape(x0.shape), hi.reshape(x0.shape)

    # ------------------------------------------------------------------ public API
    def clip(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """Convex relaxation: clamp to the bounds and, given ``x0``, keep immutable features at
        ``x0`` and monotone features on their allowed side of ``x0``. Integer, binary and one-hot
        features are left relaxed (see :meth:`project`)."""
        if x0 is None:
            lo, hi = self.bounds(self._flat(x))
            return self._flat(x).clamp(lo, hi).reshape(x.shape)
        if x0.shape != x.shape:
            raise ValueError(f"Domain.clip: x has shape {tuple(x.shape)}, x0 {tuple(x0.shape)}")
        lo, hi = self.delta_bounds(x0)
        return x0 + (x - x0).clamp(lo, hi)

    def project(self, x: Tensor, x0: Tensor | None = None) -> Tensor:
        """Nearest valid point: :meth:`clip`, then round integer features to their grid, binary
        features to the nearer value and each one-hot group to its arg-max (the nearest one-hot
        vector in L2). Immutable features are restored from ``x0`` last."""
        out = self.clip(x, x0)
        if not self.is_discrete:
            return out
        # one-hot scores are x itself, not its clip: clipping ties every value above 1 (e.g.
        # [1.5, 2, 0] -> [1, 1, 0]) and would lose the arg-max, the nearest one-hot vector to x.
        # An immutable indicator keeps its x0 value: forced in when hot, never chosen when cold.
        scores = self._flat(x)
        if x0 is not None and self.immutable is not None:
            m = self._mask(self.immutable, scores)  # type: ignore[arg-type]
            inf = torch.full_like(scores, float("inf"))
            fixed = torch.where(self._flat(x0) > 0.5, inf, -inf)
            scores = torch.where(m, fixed, scores)  # type: ignore[arg-type]
        flat = self._repair_discrete(self._flat(out).clone(), scores)
        if x0 is not None and self.immutable is not None:
            m = self._mask(self.immutable, flat)  # type: ignore[arg-type]
            flat = torch.where(m, self._flat(x0), flat)  # type: ignore[arg-type]
        return flat.reshape(x.shape)

    def _repair_discrete(self, flat: Tensor, scores: Tensor | None = None) -> Tensor:
        codes: Tensor | None = self._kind  # type: ignore[attr-defined]
        lo, hi = self.bounds(flat)
        if codes is not None:
            codes = codes.to(flat.device)
            res = self._like(self.resolution, flat)  # type: ignore[arg-type]
            snapped = lo + torch.round((flat - lo) / res) * res
            over = snapped > hi + 1e-12
            snapped = torch.where(over, snapped - res, snapped)  # stay inside the box
            # a value already on the grid up to float rounding stays bit-identical (0.3 is
            # 3 * 0.1 only to rounding): re-rounding would fake a change, e.g. in an L0 count
            scale = flat.abs() + lo.abs() + res  # type: ignore[operator]
            tol = (8 * torch.finfo(flat.dtype).eps * scale).clamp(max=5e-7)  # < contains' atol
            snapped = torch.where((snapped - flat).abs() <= tol, flat, snapped)
            binary = torch.where(flat - lo >= (hi - lo) / 2, hi.expand_as(flat), lo.expand_as(flat))
            flat = torch.where(codes == _INTEGER, snapped, flat)
            flat = torch.where(codes == _BINARY, binary, flat)
        index: Tensor | None = self._group_index  # type: ignore[attr-defined]
        if index is not None:
            flat = self._repair_one_hot(flat, index.to(flat.device),
                                        flat if scores is None else scores)
        return flat

    @staticmethod
    def _repair_one_hot(flat: Tensor, index: Tensor, scores: Tensor) -> Tensor:
        valid = index >= 0
        safe = index.clamp(min=0)
        values = scores[:, safe]  # (N, G, W)
        values = values.masked_fill(~valid, float("-inf"))
        winner = values.argmax(dim=-1, keepdim=True)
        one_hot = torch.zeros_like(values).scatter_(-1, winner, 1.0)
        cols = safe[valid]
        flat[:, cols] = one_hot[:, valid]
        return flat

    def violations(self, x: Tensor, x0: Tensor | None = None, *, atol: float = 1e-6) -> Tensor:
        """Bool tensor ``(N, F)``: True where a feature breaks the domain (one-hot violations are
        marked on every feature of the group)."""
        flat = self._flat(x)
        lo, hi = self.bounds(flat)
        bad = (flat < lo - atol) | (flat > hi + atol) | ~torch.isfinite(flat)
        codes: Tensor | None = self._kind  # type: ignore[attr-defined]
        if codes is not None:
            codes = codes.to(flat.device)
            res = self._like(self.resolution, flat)
            on_grid = (flat - (lo + torch.round((flat - lo) / res) * res)).abs() <= atol  # type: ignore[operator]
            two_valued = ((flat - lo).abs() <= atol) | ((flat - hi).abs() <= atol)
            bad |= ((codes == _INTEGER) & ~on_grid) | ((codes == _BINARY) & ~two_valued)
        index: Tensor | None = self._group_index  # type: ignore[attr-defined]
        if index is not None:
            index = index.to(flat.device)
            valid = index >= 0
            values = flat[:, index.clamp(min=0)] * valid
            binary = ((values.abs() <= atol) | ((values - 1).abs() <= atol)) | ~valid
            ok = binary.all(-1) & ((values.sum(-1) - 1).abs() <= atol)  # (N, G)
            bad = self._mark_groups(bad, index, ~ok)
        if x0 is not None:
            lo_d, hi_d = self.delta_bounds(x0)
            delta = flat - self._flat(x0)
            bad |= (delta < self._flat(lo_d) - atol) | (delta > self._flat(hi_d) + atol)
        return bad

    @staticmethod
    def _mark_groups(bad: Tensor, index: Tensor, group_bad: Tensor) -> Tensor:
        valid = index >= 0
        cols = index[valid]  # (K,)
        per_col = group_bad[:, valid.nonzero()[:, 0]]  # (N, K)
        bad = bad.clone()
        bad[:, cols] |= per_col
        return bad

    def contains(self, x: Tensor, x0: Tensor | None = None, *, atol: float = 1e-6) -> Tensor:
        """Per-sample bool ``(N,)``: ``x`` lies in the domain (and, given ``x0``, respects the
        immutable and monotone features relative to it). Large batches go in row chunks."""
        flat = self._flat(x)
        flat0 = None if x0 is None else self._flat(x0)
        step = max(1, _CHUNK_ELEMENTS // max(1, flat.shape[1]))
        return torch.cat([~self.violations(flat[i:i + step], None if flat0 is None else
                                           flat0[i:i + step], atol=atol).any(dim=1)
                          for i in range(0, flat.shape[0], step)] or [flat.new_ones(0).bool()])

    def validate(self, x: Tensor, x0: Tensor | None = None, *, name: str = "x",
                 atol: float = 1e-6) -> None:
        """Raise ``ValueError`` naming the first offending sample, feature, value and rule."""
        if self.is_box and x0 is None and self._finite_bounds:  # type: ignore[attr-defined]
            # fast path for the calls at every attack's entry: one reduction, one sync
            flat = self._flat(x)
            scalar = self.scalar_bounds
            if scalar is not None:
                if not flat.numel():
                    return
                low, high = torch.aminmax(flat.detach())
                # NaN fails both comparisons and takes the slow path below
                if float(low) >= scalar[0] - atol and float(high) <= scalar[1] + atol:
                    return
            else:
                lo, hi = self.bounds(flat)
                if bool(((flat >= lo - atol) & (flat <= hi + atol)).all()):
                    return
        ok = self.contains(x, x0, atol=atol)
        if bool(ok.all()):
            return
        n_bad = int((~ok).sum())
        i = int((~ok).nonzero()[0, 0])
        flat = self._flat(x)
        j = int(self.violations(flat[i:i + 1], None if x0 is None else self._flat(x0)[i:i + 1],
                                atol=atol)[0].nonzero()[0, 0])
        value = float(flat[i, j])
        reason = self._reason(flat, i, j, x0, atol)
        raise ValueError(
            f"{name}: sample {i}, feature {self._name(j)} = {value:.6g} is outside the domain "
            f"({reason}); {n_bad} of {flat.shape[0]} samples are invalid")

    def _reason(self, flat: Tensor, i: int, j: int, x0: Tensor | None, atol: float) -> str:
        lo, hi = float(self.bounds(flat)[0].expand(flat.shape[1])[j]), \
            float(self.bounds(flat)[1].expand(flat.shape[1])[j])
        v = float(flat[i, j])
        if v != v or v in (float("inf"), float("-inf")):
            return "not finite"
        if v < lo - atol or v > hi + atol:
            return f"bounds [{lo:.6g}, {hi:.6g}]"
        # name only a rule that this value really breaks: an on-grid integer or a valid one-hot
        # group can also be flagged by an immutable or monotone feature (checked last)
        for g in self.one_hot_groups:
            vals = flat[i, list(g)]
            if j in g and not (bool(((vals.abs() <= atol) | ((vals - 1).abs() <= atol)).all())
                               and abs(float(vals.sum()) - 1) <= atol):
                shown = ", ".join(f"{float(t):.6g}" for t in vals)
                return (f"one-hot group {list(g)} is not one-hot: values [{shown}], sum "
                        f"{float(vals.sum()):.6g}")
        codes: Tensor | None = self._kind  # type: ignore[attr-defined]
        kind = _CONTINUOUS if codes is None else int(codes[j])
        if kind == _INTEGER:
            res = float(self.resolution.expand(flat.shape[1])[j])  # type: ignore[union-attr]
            if abs(v - (lo + round((v - lo) / res) * res)) > atol:
                return f"integer feature off the grid {lo:.6g} + k * {res:.6g}"
        if kind == _BINARY and abs(v - lo) > atol and abs(v - hi) > atol:
            return f"binary feature not in {{{lo:.6g}, {hi:.6g}}}"
        if x0 is not None:
            for mask, label in ((self.immutable, "immutable"),
                                (self.increase_only, "increase-only"),
                                (self.decrease_only, "decrease-only")):
                if mask is not None and bool(mask[j]):  # type: ignore[index]
                    return f"{label} feature changed from {float(self._flat(x0)[i, j]):.6g}"
        return "constraint"

"""advlab's extension of C&W L2 to discrete domains: shortening a valid success that keeps
succeeding.

On a domain with integer, binary or one-hot features C&W optimises the relaxed point, judges
each iterate by its nearest valid point and keeps f6 unclamped while that point fails (see
:func:`~advlab.attacks.carlini_wagner.carlini_wagner_l2`), so its best valid success usually
lies past the boundary. :func:`shorten` then moves it back towards ``x`` while it stays a valid
success:

1. a bisection on the segment ``x + t (x_best - x)``, each point repaired to the domain
   (:meth:`Domain.project`), for the smallest ``t`` that still succeeds;
2. greedy reverts: each round tries, for every sample at once, giving back to each discrete
   feature (a binary flag, an integer count, a whole one-hot group) that differs from ``x`` its
   value in ``x``, and keeps the successful revert with the smallest L2; it stops when no revert
   succeeds.

Only forward passes (no gradients); every candidate is a valid point, so every output is too.
"""

from __future__ import annotations

import torch
from torch import Tensor

from advlab.attacks.common import Model, expand_as_batch
from advlab.domain import Domain
from advlab.losses import is_success
from advlab.models import batching

_BISECTIONS = 10
_REVERT_ROUNDS = 8


def _units(domain: Domain, n_features: int, device: torch.device) -> Tensor:
    """Bool ``(U, F)``: the discrete units (one per integer or binary feature, one per one-hot
    group) as masks over the flattened features."""
    rows = []
    for kind in ("integer", "binary"):
        mask = domain.kind_mask(kind)  # type: ignore[arg-type]
        if mask is not None:
            rows += [torch.nn.functional.one_hot(i, n_features).bool()
                     for i in mask.to(device).nonzero()[:, 0]]
    for group in domain.one_hot_groups:
        row = torch.zeros(n_features, dtype=torch.bool, device=device)
        row[list(group)] = True
        rows.append(row)
    if not rows:
        return torch.zeros(0, n_features, dtype=torch.bool, device=device)
    return torch.stack(rows)


def shorten(model: Model, x: Tensor, x_best: Tensor, found: Tensor, y: Tensor,
            target: Tensor | None, domain: Domain) -> Tensor:
    """The valid successes ``x_best[found]`` moved towards ``x`` while they succeed (module
    docstring); other rows are returned unchanged."""
    idx = found.nonzero()[:, 0]
    if idx.numel() == 0:
        return x_best
    x0, xb, yy = x[idx], x_best[idx], y[idx]
    tt = None if target is None else target[idx]

    def succeeds(points: Tensor, rows: Tensor) -> Tensor:
        with torch.no_grad():
            logits = batching.forward(model, points)
        return is_success(logits, yy[rows], None if tt is None else tt[rows])

    every = torch.arange(len(idx), device=x.device)
    lo = torch.zeros(len(idx), dtype=x.dtype, device=x.device)
    hi = torch.ones_like(lo)
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        point = domain.project(x0 + expand_as_batch(mid, x0) * (x_best[idx] - x0), x0)
        ok = succeeds(point, every)
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
        closer = ok & ((point - x0).flatten(1).norm(dim=1) < (xb - x0).flatten(1).norm(dim=1))
        xb = torch.where(expand_as_batch(closer, xb), point, xb)

    flat0, flat = x0.flatten(1), xb.flatten(1).clone()
    units = _units(domain, flat.shape[1], x.device)
    for _ in range(_REVERT_ROUNDS if len(units) else 0):
        changed = ((flat != flat0)[:, None, :] & units[None]).any(-1)  # (N, U)
        rows, unit = changed.nonzero(as_tuple=True)
        if rows.numel() == 0:
            break
        cand = torch.where(units[unit], flat0[rows], flat[rows])
        ok = succeeds(cand.reshape(-1, *x.shape[1:]), rows)
        l2 = (cand - flat0[rows]).norm(dim=1).masked_fill(~ok, float("inf"))
        best = torch.full((len(idx),), float("inf"), dtype=x.dtype, device=x.device)
        best = best.scatter_reduce(0, rows, l2, "amin")
        pick = ok & (l2 == best[rows])
        if not bool(pick.any()):
            break
        # one revert per sample: the first of its best (ties are rare)
        order = pick.nonzero()[:, 0]
        first = torch.full((len(idx),), len(rows), dtype=torch.long, device=x.device)
        first = first.scatter_reduce(0, rows[order], order, "amin")
        first = first[first < len(rows)]
        flat[rows[first]] = cand[first]
    out = x_best.clone()
    out[idx] = flat.reshape(xb.shape)
    return out

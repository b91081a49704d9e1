"""Square Attack, score-based, in L∞ and L2 (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020).

Conventions: :mod:`advlab.attacks.common`. The attack sees the model only through an
:class:`~advlab.attacks.oracle.Oracle` giving probabilities (pass an ``Oracle`` as ``model`` to
impose a query budget or read the per-sample query counts; any other model is wrapped in one).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from advlab import norms
from advlab.attacks.common import Model, check_inputs, expand_as_batch, index_or_none
from advlab.attacks.oracle import Oracle, QueryBudgetExceeded, as_oracle, log_probabilities
from advlab.losses import cross_entropy, margin
from advlab.threat import ThreatModel

SquareLoss = Literal["margin", "ce"]
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # the paper's p schedule, of 10,000


def square(model: Model | Oracle, x: Tensor, y: Tensor, threat: ThreatModel, *,
           target: Tensor | None = None, max_queries: int = 300, p_init: float | None = None,
           loss: SquareLoss = "margin", generator: torch.Generator | None = None) -> Tensor:
    """Square Attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020, Algorithms 1–3;
    arXiv:1912.00049): random search over localised square updates, score-based.

    Maximises the margin of the log-probabilities (``log p_j - log p_y``, which equals the logit
    margin) by random search: each iteration draws one update of a random square window (side
    ``sqrt(p * H * W)``, with ``p`` halved at the paper's iterations 10, 50, 200, ... of 10,000,
    rescaled to ``max_queries``) and keeps it only if the loss improves. L∞ (Alg. 2) sets the
    window to ``±eps`` per channel from a vertical-stripe start; L2 (Alg. 3) moves the mass of a
    second window into the first one with the paper's centred pattern eta, keeping ``||δ||_2 =
    eps``. Non-image inputs use windows of ``p * D`` random coordinates. Every candidate is
    projected onto the ball ∩ domain (:func:`advlab.norms.project`, then the discrete repair), so
    only valid points are queried; a candidate that changes nothing costs no query. Each sample
    leaves the batch at its first success (per-sample early stopping).

    Args:
        max_queries: per sample, the initial point included. p_init: initial window share
            (default 0.05 for L∞, 0.1 for L2: the paper's). loss: ``"margin"`` or ``"ce"``.
        Others: see :mod:`advlab.attacks.common`; ``threat.norm`` is ``"linf"`` or ``"l2"``.

    Returns:
        ``x_adv`` inside ``threat``; each sample's first success, else its best point. Raises
        :class:`~advlab.attacks.oracle.QueryBudgetExceeded` (with ``.partial``) when an oracle's
        budget runs out.
    """
    check_inputs("square", model, x, y, threat, target, needs_finite_eps=True)
    if threat.norm not in ("linf", "l2"):
        raise ValueError(f"square: norm must be 'linf' or 'l2', got {threat.norm!r}")
    if max_queries < 1 or loss not in ("margin", "ce"):
        raise ValueError(f"square: need max_queries >= 1 and loss 'margin' or 'ce', got "
                         f"{max_queries}, {loss!r}")
    p_init = p_init if p_init is not None else (0.05 if threat.norm == "linf" else 0.1)
    if not 0 < p_init <= 1:
        raise ValueError(f"square: p_init must be in (0, 1], got {p_init}")
    oracle = as_oracle(model, "square", "probabilities", x.shape[0])
    x = x.detach()
    lo, hi = threat.delta_bounds(x)
    delta = _project(threat, _initial(x, threat, generator), x, lo, hi)
    state = _State(x, y, target, lo, hi, delta)
    try:
        state.start(oracle, loss)
        for i in range(1, max_queries):
            if state.idx.numel() == 0:
                break
            p = _p_schedule(i, max_queries, p_init)
            cand = _candidate(state, threat, p, generator)
            cand = _project(threat, cand, state.x0, state.lo, state.hi)
            state.step(oracle, loss, cand)
    except QueryBudgetExceeded as err:
        raise err.with_partial("square", x + state.delta_all, oracle.per_sample) from None
    return (x + state.delta_all).detach()


class _State:
    """The active batch (compacted as samples succeed) and every sample's current delta."""

    def __init__(self, x: Tensor, y: Tensor, target: Tensor | None, lo: Tensor, hi: Tensor,
                 delta: Tensor) -> None:
        self.delta_all = delta.clone()
        self.idx = torch.arange(x.shape[0], device=x.device)
        self.x0, self.y, self.target, self.lo, self.hi = x, y, target, lo, hi
        self.delta = delta
        self.best = x.new_empty(0)

    def _ask(self, oracle: Oracle, loss: str, cand: Tensor, rows: Tensor
             ) -> tuple[Tensor, Tensor]:
        """Query ``x0 + cand`` for the active rows ``rows``: (loss to maximise, success)."""
        scores = oracle(self.x0[rows] + cand, self.idx[rows])
        logp = log_probabilities(scores, oracle.output)
        y, t = self.y[rows], index_or_none(self.target, rows)
        hit = logp.argmax(1) != y if t is None else logp.argmax(1) == t
        return (margin if loss == "margin" else cross_entropy)(logp, y, t), hit

    def start(self, oracle: Oracle, loss: str) -> None:
        self.best, hit = self._ask(oracle, loss, self.delta, self.idx)
        self._retire(hit)

    def step(self, oracle: Oracle, loss: str, cand: Tensor) -> None:
        moved = (cand != self.delta).flatten(1).any(dim=1)
        rows = moved.nonzero()[:, 0]
        if rows.numel() == 0:
            return
        value, hit = self._ask(oracle, loss, cand[rows], rows)
        better = value > self.best[rows]
        self.delta[rows] = torch.where(expand_as_batch(better, cand[rows]), cand[rows],
                                       self.delta[rows])
        self.best[rows] = torch.where(better, value, self.best[rows])
        done = torch.zeros_like(moved)
        done[rows] = hit & better
        self._retire(done)

    def _retire(self, hit: Tensor) -> None:
        """Record the current deltas; samples that succeeded leave the active batch."""
        self.delta_all[self.idx] = self.delta
        if not bool(hit.any()):
            return
        keep = (~hit).nonzero()[:, 0]
        self.idx, self.x0, self.y = self.idx[keep], self.x0[keep], self.y[keep]
        self.target = index_or_none(self.target, keep)
        self.lo, self.hi, self.delta, self.best = (self.lo[keep], self.hi[keep],
                                                   self.delta[keep], self.best[keep])


def _p_schedule(i: int, max_queries: int, p_init: float) -> float:
    """The paper's piecewise-constant share of the input a window covers at iteration ``i``."""
    it = int(i / max_queries * 10000)
    return float(p_init / 2 ** sum(it > h for h in _HALVINGS))


def _project(threat: ThreatModel, delta: Tensor, x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Nearest valid perturbation: exact projection onto ball ∩ box, then the discrete repair."""
    d = norms.project(delta, threat.norm, threat.eps, lower=lo, upper=hi)
    if threat.domain.is_discrete:
        d = threat.repair(x + d, x) - x
    return d


def _is_image(x: Tensor) -> bool:
    return x.dim() == 4 and x.shape[2] > 1 and x.shape[3] > 1


def _signs(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None) -> Tensor:
    r = torch.randint(0, 2, shape, generator=generator, device=x.device)
    return (2 * r - 1).to(x.dtype)


def _initial(x: Tensor, threat: ThreatModel, generator: torch.Generator | None) -> Tensor:
    """Vertical stripes of ±eps (L∞, Alg. 2); for L2, a grid of ±eta tiles rescaled to eps."""
    n, eps = x.shape[0], threat.eps
    if threat.norm == "linf":
        shape = (n, x.shape[1], 1, x.shape[3]) if _is_image(x) else tuple(x.shape)
        return (eps * _signs(shape, x, generator)).expand(x.shape).clone()
    if _is_image(x):
        c, h, w = x.shape[1:]
        s = max(1, min(h, w) // 5)
        reps = (math.ceil(h / s), math.ceil(w / s))
        signs = _signs((n, c, *reps), x, generator)
        tiles = signs.repeat_interleave(s, 2).repeat_interleave(s, 3) * _eta(s, x).repeat(*reps)
        delta = tiles[..., :h, :w]
    else:
        delta = _signs(tuple(x.shape), x, generator)
    flat = delta.flatten(1)
    scaled: Tensor = flat * (eps / flat.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return scaled.reshape(x.shape)


def _eta(h: int, x: Tensor) -> Tensor:
    """The L2 pattern on an ``h × h`` window: the paper's centred pattern on its left half,
    minus it on its right half (two halves of opposite sign)."""
    k = h // 2
    left = _centred(h, k, x) if k > 0 else x.new_zeros(h, 0)
    return torch.cat([left, -_centred(h, h - k, x)], dim=1)


def _centred(h1: int, h2: int, x: Tensor) -> Tensor:
    """The centred pattern ``eta_{r,s} = sum_{k=0}^{M(r,s)} 1 / (n + 1 - k)^2`` with
    ``n = h1 // 2`` and ``M = n - max(|r - h1 // 2|, |s - h2 // 2|)`` (0-based), zero where
    ``M < 0``."""
    n = h1 // 2
    ring = torch.maximum((torch.arange(h1, device=x.device) - h1 // 2).abs()[:, None],
                         (torch.arange(h2, device=x.device) - h2 // 2).abs()[None, :])
    m = n - ring
    terms = 1.0 / (n + 1 - torch.arange(n + 1, device=x.device, dtype=x.dtype)) ** 2
    cum = torch.cat([terms.cumsum(0), terms.new_zeros(1)])  # index -1 (M < 0) reads 0
    pattern: Tensor = cum[torch.where(m >= 0, m, torch.full_like(m, -1))]
    return pattern


def _size(x: Tensor, p: float) -> int:
    """A window's side ``round(sqrt(p * H * W))`` (images) or ``round(p * D)`` coordinates."""
    if _is_image(x):
        hh, ww = x.shape[2], x.shape[3]
        return min(hh, ww, max(1, round(math.sqrt(p * hh * ww))))
    d = math.prod(x.shape[1:])
    return min(d, max(1, round(p * d)))


def _windows(x: Tensor, size: int, generator: torch.Generator | None
             ) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """A random window per sample: a bool mask ``(n, 1, H, W)`` (or of ``x``'s shape: ``size``
    random coordinates), and for images the row and column grids ``(n, h, h)`` of the window."""
    n = x.shape[0]
    if not _is_image(x):
        d = math.prod(x.shape[1:])
        rank = torch.rand(n, d, generator=generator, device=x.device).argsort(1).argsort(1)
        return (rank < size).reshape(x.shape), None, None
    hh, ww, h = x.shape[2], x.shape[3], size
    r = torch.randint(0, hh - h + 1, (n,), generator=generator, device=x.device)
    c = torch.randint(0, ww - h + 1, (n,), generator=generator, device=x.device)
    ar = torch.arange(h, device=x.device)
    rows = (r[:, None] + ar)[:, :, None].expand(n, h, h)
    cols = (c[:, None] + ar)[:, None, :].expand(n, h, h)
    mask = torch.zeros(n, hh, ww, dtype=torch.bool, device=x.device)
    mask[_batch(n, h, x), rows, cols] = True
    return mask[:, None], rows, cols


def _batch(n: int, h: int, x: Tensor) -> Tensor:
    return torch.arange(n, device=x.device)[:, None, None].expand(n, h, h)


def _candidate(state: _State, threat: ThreatModel, p: float,
               generator: torch.Generator | None) -> Tensor:
    """One random update of every active sample (Alg. 2 for L∞, Alg. 3 for L2)."""
    delta, x = state.delta, state.x0
    size = _size(x, p)
    mask1, rows, cols = _windows(x, size, generator)
    if threat.norm == "linf":
        shape = (x.shape[0], x.shape[1], 1, 1) if _is_image(x) else tuple(x.shape)
        return torch.where(mask1, threat.eps * _signs(shape, x, generator), delta)
    mask2 = _windows(x, size, generator)[0]
    return _l2_candidate(delta, x, threat.eps, mask1, mask2, rows, cols, size, generator)


def _l2_candidate(delta: Tensor, x: Tensor, eps: float, mask1: Tensor, mask2: Tensor,
                  rows: Tensor | None, cols: Tensor | None, h: int,
                  generator: torch.Generator | None) -> Tensor:
    """Algorithm 3: move the mass of the windows W1 ∪ W2 (and the unused budget) into W1, along
    the current W1 content plus a random-sign pattern, so that ``||δ||_2 = eps``."""
    n = delta.shape[0]
    if rows is not None and cols is not None:  # images: the centred pattern, randomly rotated
        eta = _eta(h, x)
        flip = torch.rand(n, generator=generator, device=x.device) < 0.5
        full = torch.zeros(n, x.shape[2], x.shape[3], dtype=x.dtype, device=x.device)
        full[_batch(n, h, x), rows, cols] = torch.where(flip[:, None, None], eta.T, eta)
        pattern, channels = full[:, None], x.shape[1]
        rho = _signs((n, channels, 1, 1), x, generator)
        dims: tuple[int, ...] = (2, 3)
    else:  # other inputs: a random-sign pattern on the window's coordinates
        pattern, channels = _signs(tuple(x.shape), x, generator) * mask1, 1
        rho = _signs((n,) + (1,) * (x.dim() - 1), x, generator)
        dims = tuple(range(1, x.dim()))

    def cnorm(t: Tensor) -> Tensor:  # per-channel norm (images), per-sample otherwise
        return t.square().sum(dim=dims, keepdim=True).sqrt()

    m1, m12 = mask1.to(x.dtype), (mask1 | mask2).to(x.dtype)
    unused = (eps ** 2 - delta.flatten(1).square().sum(1)).clamp_min(0)
    in_w1 = delta * m1
    n_w1 = cnorm(in_w1)
    fresh = rho * pattern / cnorm(pattern).clamp_min(1e-12)
    temp = fresh + torch.where(n_w1 > 0, in_w1 / n_w1.clamp_min(1e-12), torch.zeros_like(in_w1))
    temp = torch.where(cnorm(temp) > 1e-6, temp, fresh)  # the two cancelled: keep the mass
    avail = (cnorm(delta * m12).square() + expand_as_batch(unused, x) / channels).sqrt()
    return delta * (1 - m12) + temp / cnorm(temp).clamp_min(1e-12) * avail * m1

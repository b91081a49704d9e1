"""DeepFool inside a box: linear models with coordinates at the bounds, where the exact minimal
distance inside the box is known (a one-dimensional monotone search, below).

For ``min ||r||_2`` subject to ``v·r >= g`` and ``lo <= r <= hi`` (``lo <= 0 <= hi``) the
optimum is ``r(λ) = clip(λ v, lo, hi)`` for the smallest ``λ >= 0`` with ``v·r(λ) >= g`` (KKT);
in L∞ it is the smallest ``t`` with ``sum_i v_i clip(t sign(v_i), lo_i, hi_i) >= g``. Both
left-hand sides are non-decreasing, so bisection finds them to float64 precision. A linear
classifier is fooled by the nearest of its class-difference half-spaces, so the minimal distance
of a sample is the minimum over the other classes.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel, norms
from advlab.attacks import deepfool
from advlab.models import QueryCounter

BOX = Domain(0.0, 1.0)
OVERSHOOT = 0.02


def box_distance(v: torch.Tensor, g: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                 p: str) -> torch.Tensor:
    """Exact ``min ||r||_p`` s.t. ``v·r >= g``, ``lo <= r <= hi``, per row; ``inf`` if none."""

    def reach(s: torch.Tensor) -> torch.Tensor:  # the best v·r at scale s
        r = s[:, None] * v if p == "l2" else s[:, None] * v.sign()
        return (v * torch.minimum(torch.maximum(r, lo), hi)).sum(1)

    def length(s: torch.Tensor) -> torch.Tensor:
        r = s[:, None] * v if p == "l2" else s[:, None] * v.sign()
        return norms.norm(torch.minimum(torch.maximum(r, lo), hi), p)  # type: ignore[arg-type]

    top = torch.full_like(g, 1e6)
    feasible = reach(top) >= g
    a, b = torch.zeros_like(g), top
    for _ in range(200):
        mid = (a + b) / 2
        ok = reach(mid) >= g
        a, b = torch.where(ok, a, mid), torch.where(ok, mid, b)
    return torch.where(feasible, length(b), torch.full_like(g, math.inf))


def exact_box_distance(model: nn.Linear, x: torch.Tensor, y: torch.Tensor, p: str,
                       domain: Domain = BOX) -> torch.Tensor:
    lo, hi = domain.delta_bounds(x)
    w, b = model.weight.detach(), model.bias.detach()
    best = torch.full((len(x),), math.inf, dtype=x.dtype)
    for j in range(w.shape[0]):
        v = w[j] - w[y]  # (N, D): grad of f_j - f_y
        g = (w[y] * x).sum(1) + b[y] - x @ w[j] - b[j]  # f_y - f_j >= 0
        d = box_distance(v, g, lo, hi, p)
        best = torch.where(y == j, best, torch.minimum(best, d))
    return best


def linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    model = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        model.weight.copy_(weight)
        model.bias.copy_(bias)
    return model.requires_grad_(False)


def binary_problem(n: int = 200, d: int = 24, classes: int = 2, seed: int = 0):
    """NSL-KDD-like records: the first half of the features binary (exactly at 0 or 1), the rest
    continuous in [0.05, 0.95]; a linear model, samples kept where the box allows a success."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64) * 0.9 + 0.05
    half = d // 2
    x[:, :half] = (torch.rand(n, half, generator=g, dtype=torch.float64) < 0.5).double()
    model = linear(torch.randn(classes, d, generator=g, dtype=torch.float64),
                   torch.randn(classes, generator=g, dtype=torch.float64))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@pytest.mark.parametrize("p", ["l2", "linf"])
@pytest.mark.parametrize("classes", [2, 5])
def test_box_distance_is_reached_within_the_overshoot_and_never_beaten(p, classes) -> None:
    model, x, y = binary_problem(classes=classes)
    optimum = exact_box_distance(model, x, y, p)
    keep = torch.isfinite(optimum) & (optimum > 1e-3)
    x, y, optimum = x[keep], y[keep], optimum[keep]
    assert len(x) > 100
    counter = QueryCounter(model)
    x_adv = deepfool(counter, x, y, ThreatModel(p, math.inf, BOX), candidates=classes)
    assert counter.gradients <= 6 * len(x)  # the exact finish: no long geometric approach
    assert BOX.contains(x_adv).all()
    assert (model(x_adv).argmax(1) != y).all()
    ratio = norms.norm(x_adv - x, p) / optimum  # type: ignore[arg-type]
    assert ratio.min() >= 1.0 - 1e-9, "below the exact optimum: a broken norm or box"
    assert ratio.median() <= 1.01
    # two classes: the overshoot is the only slack; more: DeepFool's choice of the nearest
    # linearised boundary is greedy and may take a farther class than the optimum's
    assert ratio.max() <= (1 + OVERSHOOT + 1e-6 if classes == 2 else 1.1)


def test_the_paper_step_is_taken_from_the_full_gradient_and_clipped() -> None:
    """When the box removes a small share of a step, the step is the paper's (full gradient),
    clipped, not the longer step of the masked gradient: recorded on the first iterate."""
    w = torch.tensor([[-1.0, -1.0, -3.0, 0.3]], dtype=torch.float64)
    model = linear(torch.cat([-w, w]), torch.tensor([1.5, -1.5], dtype=torch.float64))
    x = torch.tensor([[0.5, 0.5, 0.5, 1.0]], dtype=torch.float64)  # f = -2.1 + 0.3 < 0: class 0
    y = torch.tensor([0])
    seen: list[torch.Tensor] = []

    class Recorder(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            seen.append(t.detach().clone())
            return model(t)

    deepfool(Recorder(), x, y, ThreatModel("l2", math.inf, BOX), steps=3)
    f = 2 * (x @ w[0] - 1.5)  # logit difference f_1 - f_0 = 2 (w·x - 1.5)
    grad = 2 * w[0]
    paper = (f.abs() * (1 + 1e-5) / grad.dot(grad)) * grad
    first = seen[2]  # clean logits, the check at x, then the first iterate
    torch.testing.assert_close(first - x, BOX.clip(x + (1 + OVERSHOOT) * paper) - x,
                               rtol=1e-9, atol=1e-12)
    assert first[0, 3] == 1.0  # the blocked coordinate stayed at its bound
    masked = grad.clone()
    masked[3] = 0
    longer = f.abs() / masked.dot(masked) * masked
    assert (first - x).norm() < (1 + OVERSHOOT) * longer.norm()


def test_a_step_the_box_clips_away_falls_back_to_the_allowed_directions() -> None:
    """Most of the gradient points out of the box: the paper's clipped steps would close the gap
    by a few percent per iteration; the exact step within the movable coordinates succeeds at
    once, at the exact box distance times the overshoot."""
    d = 30
    w = torch.full((d,), -1.0, dtype=torch.float64)
    w[0] = 0.2  # the only movable direction
    model = linear(torch.stack([-w, w]), torch.tensor([0.15, -0.15], dtype=torch.float64))
    x = torch.zeros(4, d, dtype=torch.float64)  # every other coordinate at 0, pushed below it
    x[:, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])  # w·x - 0.15 < 0: class 0
    y = torch.zeros(4, dtype=torch.long)
    counter = QueryCounter(model)
    x_adv = deepfool(counter, x, y, ThreatModel("l2", math.inf, BOX))
    assert (model(x_adv).argmax(1) == 1).all()
    assert counter.gradients <= 2 * len(x)  # one step, then the check that found the success
    optimum = exact_box_distance(model, x, y, "l2")
    torch.testing.assert_close((x_adv - x).norm(dim=1), (1 + OVERSHOOT) * optimum, rtol=1e-4,
                               atol=0)


def test_immutable_features_are_outside_the_input_space() -> None:
    """An immutable feature with a large weight neither damps the step nor costs iterations."""
    d = 6
    w = torch.tensor([2.0, 1.0, -1.0, 0.5, 0.5, 2.0], dtype=torch.float64)
    model = linear(torch.stack([-w, w]), torch.tensor([2.0, -2.0], dtype=torch.float64))
    domain = Domain(lower=[0.0] * d, upper=[1.0] * d, immutable=[5])
    x = torch.full((3, d), 0.5, dtype=torch.float64)
    x[:, 5] = torch.tensor([0.0, 0.02, 0.0])
    y = model(x).argmax(1)
    assert (y == 0).all()
    counter = QueryCounter(model)
    threat = ThreatModel("l2", math.inf, domain)
    x_adv = deepfool(counter, x, y, threat)
    assert domain.contains(x_adv, x).all()
    assert torch.equal(x_adv[:, 5], x[:, 5])
    assert (model(x_adv).argmax(1) == 1).all()
    assert counter.gradients == 2 * len(x)
    optimum = exact_box_distance(model, x, y, "l2", domain)
    torch.testing.assert_close((x_adv - x).norm(dim=1), (1 + OVERSHOOT) * optimum, rtol=1e-4,
                               atol=0)


def test_without_overshoot_float32_samples_still_cross_the_boundary() -> None:
    """Without overshoot, steps aim just past the boundary (a relative 1e-5); in float32 that is
    often lost to rounding and the next steps shrink towards nothing. The step floor (0.1 % of
    the first distance) pushes every sample over."""
    g = torch.Generator().manual_seed(1)
    model = nn.Linear(16, 3).requires_grad_(False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 16, generator=g))
    x = torch.rand(512, 16, generator=g)
    y = model(x).argmax(1)
    x_adv = deepfool(model, x, y, ThreatModel("l2", math.inf, BOX), overshoot=0.0)
    assert BOX.contains(x_adv).all()
    assert (model(x_adv).argmax(1) != y).all()

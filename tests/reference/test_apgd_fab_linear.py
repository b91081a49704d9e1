"""APGD, AutoAttack and FAB on linear models, where the answer is known in closed form.

A fixed-eps attack on an affine classifier in an unbounded domain breaks a sample exactly when
its distance to the nearest decision boundary, ``min_j |(w_y - w_j)·x + b_y - b_j| /
||w_y - w_j||_dual`` (binary: ``|f(x)| / ||w||_dual``), is at most eps: the robust accuracy is
known. A minimal-norm attack must land at (and never below) that distance. The hyperplane ∩ box
projections of FAB are checked against a linear program.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from scipy.optimize import linprog
from test_attacks_linear import (
    DUAL,
    FREE,
    UNIT,
    binary_linear,
    exact_min_distance,
    multiclass_problem,
)

from advlab import ThreatModel, norms
from advlab.attacks import apgd, apgd_t, autoattack, fab
from advlab.attacks.fab import _hyperplane_box
from advlab.evaluation import score

NORMS = ("linf", "l2", "l1")


def binary_problem(n: int = 64, dim: int = 12):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(dim, generator=g, dtype=torch.float64)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    f = x @ w + 0.2
    return binary_linear(w, 0.2), x, (f > 0).long(), w, f


def expected_robust(distance: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The closed-form robust set, and the samples far enough from the threshold (2 %) for an
    iterative attack's finite precision not to matter."""
    return distance > eps, (distance / eps - 1).abs() > 0.02


@pytest.mark.parametrize("p", NORMS)
def test_apgd_ce_robust_accuracy_is_the_closed_form_on_a_binary_linear_model(p) -> None:
    model, x, y, w, f = binary_problem()
    distance = f.abs() / norms.norm(w[None], DUAL[p])  # type: ignore[arg-type]
    eps = float(distance.median())  # half the samples robust
    threat = ThreatModel(p, eps, FREE)  # type: ignore[arg-type]
    x_adv = apgd(model, x, y, threat, generator=torch.Generator().manual_seed(1))
    robust = ~score(model, x, y, x_adv, threat).success
    want, clear = expected_robust(distance, eps)
    assert clear.sum() > 50 and 0 < want[clear].sum() < clear.sum()
    assert torch.equal(robust[clear], want[clear])


@pytest.mark.parametrize("p", NORMS)
def test_apgd_t_and_autoattack_robust_accuracy_is_the_closed_form_on_a_multiclass_model(p) -> None:
    model, x, y = multiclass_problem()
    distance = exact_min_distance(model, x, y, p)
    eps = float(distance.median())
    threat = ThreatModel(p, eps, FREE)  # type: ignore[arg-type]
    want, clear = expected_robust(distance, eps)
    # Square cannot add to APGD-T here, so a small budget keeps the test fast
    for attack in (apgd_t, partial(autoattack, max_queries=50)):
        x_adv = attack(model, x, y, threat, generator=torch.Generator().manual_seed(2))
        robust = ~score(model, x, y, x_adv, threat).success
        assert torch.equal(robust[clear], want[clear]), attack


def test_apgd_without_early_stop_reaches_the_loss_maximiser() -> None:
    model, x, y, w, f = binary_problem()
    threat = ThreatModel("linf", 0.3, FREE)
    x_adv = apgd(model, x, y, threat, early_stop=False, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x_adv, x - 0.3 * f.sign()[:, None] * w.sign())


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("variant", ["fab", "fab-t"])
def test_fab_is_within_5_percent_of_the_minimal_distance_and_never_below(p, variant) -> None:
    knobs = {"n_targets": 4, "steps": 30} if variant == "fab-t" else {"steps": 30}
    model, x, y, w, f = binary_problem()
    optimum = f.abs() / norms.norm(w[None], DUAL[p])  # type: ignore[arg-type]
    cases = [(model, x, y, optimum)]
    mc, xm, ym = multiclass_problem()
    cases.append((mc, xm, ym, exact_min_distance(mc, xm, ym, p)))
    for m, xs, ys, opt in cases:
        keep = opt > 1e-3
        xs, ys, opt = xs[keep], ys[keep], opt[keep]
        x_adv = fab(m, xs, ys, ThreatModel(p, math.inf, FREE), **knobs)  # type: ignore[arg-type]
        ratio = norms.norm(x_adv - xs, p) / opt  # type: ignore[arg-type]
        assert (m(x_adv).argmax(1) != ys).all()
        assert ratio.min() >= 1.0 - 1e-9, "below the exact optimum means a broken norm"
        assert ratio.max() <= 1.05


@pytest.mark.parametrize("p", NORMS)
def test_fab_inside_a_box_is_within_5_percent_and_never_below(p) -> None:
    """Scaled into [-1, 1]^D, where the nearest boundary point stays inside the box."""
    model, x, y = multiclass_problem()
    with torch.no_grad():
        model.weight.mul_(4)  # the same decision regions for x / 4
    x = x / 4
    optimum = exact_min_distance(model, x, y, p)
    x_adv = fab(model, x, y, ThreatModel(p, math.inf, UNIT))  # type: ignore[arg-type]
    inside = (x - optimum.max()).min() > -1 and (x + optimum.max()).max() < 1
    assert bool(UNIT.contains(x_adv).all()) and (model(x_adv).argmax(1) != y).all()
    ratio = norms.norm(x_adv - x, p) / optimum  # type: ignore[arg-type]
    assert ratio.min() >= 1.0 - 1e-9
    if inside:
        assert ratio.max() <= 1.05


def test_fab_with_finite_eps_stops_below_eps_and_counts_the_same() -> None:
    model, x, y, w, f = binary_problem()
    distance = f.abs() / w.abs().sum()
    eps = float(distance.median())
    threat = ThreatModel("linf", eps, FREE)
    x_adv = fab(model, x, y, threat)
    want, clear = expected_robust(distance, eps)
    assert torch.equal(~score(model, x, y, x_adv, threat).success[clear], want[clear])


# --------------------------------------------------------------------------- projections

def _lp_optimum(w: torch.Tensor, c: float, lo: torch.Tensor, hi: torch.Tensor, p: str) -> float:
    """min ||d||_p s.t. <w, d> = c, lo <= d <= hi, as a linear program (L1 and L∞)."""
    d = w.numel()
    wn, lon, hin = w.numpy(), lo.numpy(), hi.numpy()
    if p == "l1":  # d = u - v, u, v >= 0; min sum(u + v)
        cost = [1.0] * (2 * d)
        a_eq = [list(wn) + list(-wn)]
        bounds = [(0, max(h, 0)) for h in hin] + [(0, max(-lo_, 0)) for lo_ in lon]
    else:  # variables d, t; min t, -t <= d_i <= t
        cost = [0.0] * d + [1.0]
        a_eq = [list(wn) + [0.0]]
        bounds = [(lo_, h) for lo_, h in zip(lon, hin, strict=True)] + [(0, None)]
    a_ub = None if p == "l1" else \
        [[(1.0 if j == i else 0.0) for j in range(d)] + [-1.0] for i in range(d)] + \
        [[(-1.0 if j == i else 0.0) for j in range(d)] + [-1.0] for i in range(d)]
    b_ub = None if p == "l1" else [0.0] * (2 * d)
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[c], bounds=bounds)
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("p", NORMS)
def test_hyperplane_box_projection_is_feasible_and_optimal(p) -> None:
    g = torch.Generator().manual_seed(7)
    n, d = 20, 6
    w = torch.randn(n, d, generator=g, dtype=torch.float64)
    lo = -torch.rand(n, d, generator=g, dtype=torch.float64)
    hi = torch.rand(n, d, generator=g, dtype=torch.float64)
    c = torch.randn(n, generator=g, dtype=torch.float64) * 0.5
    reach = torch.where(c[:, None] * w > 0, hi, -lo) * w.abs()  # the most <w, d> can do
    delta = _hyperplane_box(w, c, lo, hi, p)
    assert bool(((delta >= lo - 1e-12) & (delta <= hi + 1e-12)).all())
    feasible = reach.sum(1) >= c.abs()
    assert feasible.sum() > 10 and (~feasible).sum() > 0
    torch.testing.assert_close((w * delta).sum(1)[feasible], c[feasible])
    # out of reach: the box corner in the direction of the hyperplane
    corner = torch.where(c[:, None] * w > 0, hi, lo) * (w != 0)
    torch.testing.assert_close(delta[~feasible], corner[~feasible])
    if p == "l2":  # KKT: the unclipped coordinates are proportional to w
        for i in feasible.nonzero()[:, 0]:
            free = (delta[i] > lo[i] + 1e-9) & (delta[i] < hi[i] - 1e-9)
            ratio = delta[i][free] / w[i][free]
            torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))
    else:
        for i in feasible.nonzero()[:, 0]:
            optimum = _lp_optimum(w[i], float(c[i]), lo[i], hi[i], p)
            got = float(norms.norm(delta[i:i + 1], p))  # type: ignore[arg-type]
            assert got == pytest.approx(optimum, rel=1e-6, abs=1e-9)


def test_hyperplane_projection_without_box_is_the_closed_form() -> None:
    w = torch.tensor([[3.0, -4.0]], dtype=torch.float64)
    big = torch.full((1, 2), 1e6, dtype=torch.float64)
    c = torch.tensor([5.0], dtype=torch.float64)
    torch.testing.assert_close(_hyperplane_box(w, c, -big, big, "l2"),
                               torch.tensor([[0.6, -0.8]], dtype=torch.float64))  # c w / |w|^2
    torch.testing.assert_close(_hyperplane_box(w, c, -big, big, "linf"),
                               torch.tensor([[5 / 7, -5 / 7]], dtype=torch.float64))
    torch.testing.assert_close(_hyperplane_box(w, c, -big, big, "l1"),
                               torch.tensor([[0.0, -1.25]], dtype=torch.float64))

"""Unit tests for advlab.threat.ThreatModel: validation, projection, membership, random starts."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.testing import assert_close

from advlab import norms
from advlab.domain import Domain
from advlab.threat import ThreatModel

NORMS = ("linf", "l2", "l1", "l0")
PROPERTY = settings(max_examples=100, deadline=None)
REL = 1e-6

# The mixed tabular domain of tests/unit/test_domain.py, in short: continuous, integer (steps 1
# and 0.25), binary, a one-hot group of 3, an immutable integer, an increase-only integer (step
# 0.5) and a decrease-only continuous feature.
LOWER = (-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
UPPER = (2.0, 1.0, 10.0, 2.0, 1.0, 1.0, 1.0, 1.0, 3.0, 20.0, 1.0)
KINDS = ("continuous", "continuous", "integer", "integer", "binary", "continuous", "continuous",
         "continuous", "integer", "integer", "continuous")
RES = (1.0, 1.0, 1.0, 0.25, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0)
GROUP, IMMUTABLE, INC, DEC = (5, 6, 7), 8, 9, 10
F = len(LOWER)


def mixed_domain() -> Domain:
    return Domain(lower=LOWER, upper=UPPER, kinds=KINDS, resolution=RES,
                  one_hot_groups=[GROUP], immutable=[IMMUTABLE], increase_only=[INC],
                  decrease_only=[DEC])


def valid_from_uniform(u: np.ndarray) -> torch.Tensor:
    lo, hi, res = np.array(LOWER), np.array(UPPER), np.array(RES)
    x = lo + u * (hi - lo)
    for j, kind in enumerate(KINDS):
        if kind == "integer":
            steps = round((hi[j] - lo[j]) / res[j])
            x[:, j] = lo[j] + np.minimum(np.floor(u[:, j] * (steps + 1)), steps) * res[j]
        elif kind == "binary":
            x[:, j] = np.where(u[:, j] < 0.5, lo[j], hi[j])
    x[:, list(GROUP)] = np.eye(len(GROUP))[np.argmax(u[:, list(GROUP)], axis=1)]
    return torch.from_numpy(x)


@st.composite
def radii(draw, p: str, d: int) -> float:
    if p == "l0":
        return float(draw(st.integers(0, d)))
    return draw(st.floats(0.01, 5))


@st.composite
def mixed_cases(draw):
    n = draw(st.integers(1, 4))
    u = draw(hnp.arrays(np.float64, (n, F), elements=st.floats(0, 1)))
    noise = draw(hnp.arrays(np.float64, (n, F), elements=st.one_of(
        st.floats(-4, 4), st.just(0.0), st.sampled_from([-1.0, -0.5, 0.5, 1.0]))))
    p = draw(st.sampled_from(NORMS))
    eps = draw(radii(p, F))
    x = valid_from_uniform(u)
    return x, x + torch.from_numpy(noise), p, eps


@st.composite
def box_cases(draw):
    n, d = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    x = torch.from_numpy(draw(hnp.arrays(np.float64, (n, d), elements=st.floats(0, 1))))
    noise = torch.from_numpy(draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-3, 3))))
    p = draw(st.sampled_from(NORMS))
    return x, x + noise, p, draw(radii(p, d))


# ---------------------------------------------------------------------------- references
def _bisect(f, lo: float, hi: float, target: float, increasing: bool) -> float:
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (f(mid) > target) == increasing:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def ref_delta(z: np.ndarray, p: str, eps: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reference Euclidean projection of one perturbation onto ball ∩ [lo, hi] (lo <= 0 <= hi)."""
    if p == "linf":
        return np.clip(z, np.maximum(lo, -eps), np.minimum(hi, eps))
    if p == "l0":  # brute force over supports
        kept, best, arg = np.clip(z, lo, hi), math.inf, None
        for size in range(int(eps) + 1):
            for s in itertools.combinations(range(z.size), min(size, z.size)):
                d = np.zeros_like(z)
                d[list(s)] = kept[list(s)]
                if ((d - z) ** 2).sum() < best:
                    best, arg = ((d - z) ** 2).sum(), d
        return arg  # type: ignore[return-value]
    order = 2 if p == "l2" else 1
    box = np.clip(z, lo, hi)
    if np.linalg.norm(box, order) <= eps:
        return box
    if p == "l2":
        s = _bisect(lambda s: np.linalg.norm(np.clip(s * z, lo, hi)), 0.0, 1.0, eps, True)
        return np.clip(s * z, lo, hi)

    def soft(t: float) -> np.ndarray:
        return np.clip(np.sign(z) * np.maximum(np.abs(z) - t, 0), lo, hi)

    tau = _bisect(lambda t: np.abs(soft(t)).sum(), 0.0, float(np.abs(z).max()), eps, False)
    return soft(tau)


# ---------------------------------------------------------------------------- construction
def test_frozen() -> None:
    tm = ThreatModel("linf", 8 / 255)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tm.eps = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tm.norm = "l2"  # type: ignore[misc]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"norm": "l3", "eps": 1.0}, "norm must be one of"),
    ({"norm": "L2", "eps": 1.0}, "norm must be one of"),
    ({"norm": "l2", "eps": -0.1}, "eps must be >= 0"),
    ({"norm": "l2", "eps": math.nan}, "eps must be >= 0"),
    ({"norm": "l2", "eps": "0.5"}, "eps must be a number"),
    ({"norm": "l2", "eps": True}, "eps must be a number"),
    ({"norm": "l2", "eps": torch.tensor(0.5)}, "eps must be a number"),
    ({"norm": "l0", "eps": 1.5}, "L0 eps counts features"),
    ({"norm": "l2", "eps": 1.0, "domain": "box"}, "domain must be a Domain"),
    ({"norm": "l2", "eps": 1.0, "domain": None}, "domain must be a Domain"),
])
def test_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThreatModel(**kwargs)


def test_valid_construction() -> None:
    tm = ThreatModel("l0", 3)
    assert tm.eps == 3.0 and isinstance(tm.eps, float)
    assert tm.bounded and isinstance(tm.domain, Domain) and tm.domain.is_box
    assert not ThreatModel("l0", math.inf).bounded
    assert ThreatModel("l2", 0).eps == 0.0


# ---------------------------------------------------------------------------- projection: box
@PROPERTY
@given(box_cases())
def test_property_box_projection_is_exact(case) -> None:
    x, x_adv, p, eps = case
    tm = ThreatModel(p, eps)  # type: ignore[arg-type]
    out = tm.project(x_adv, x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(tm.contains(out, x).all())
    for i in range(len(x)):
        z = (x_adv[i] - x[i]).numpy()
        expected = ref_delta(z, p, eps, -x[i].numpy(), 1 - x[i].numpy())
        if p == "l0":  # ties between supports: compare the distance, which is unique
            dist = float(((out[i] - x_adv[i]) ** 2).sum())
            assert dist == pytest.approx(float(((expected - z) ** 2).sum()), rel=1e-9, abs=1e-12)
        else:
            assert_close(out[i] - x[i], torch.from_numpy(expected), atol=1e-7, rtol=1e-7)
    assert_close(tm.project(out, x), out, atol=1e-9, rtol=1e-9)  # idempotent


def test_box_projection_linf_is_clamp() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 8, 8, generator=g)
    x_adv = x + torch.randn(4, 1, 8, 8, generator=g)
    eps = 8 / 255
    out = ThreatModel("linf", eps).project(x_adv, x)
    expected = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0, 1)
    assert_close(out, expected)


@pytest.mark.parametrize("p", NORMS)
def test_image_projection_inside(p: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 1, 8, 8, generator=g)
    x_adv = x + 2 * torch.randn(5, 1, 8, 8, generator=g)
    tm = ThreatModel(p, 5.0 if p == "l0" else 0.5)  # type: ignore[arg-type]
    out = tm.project(x_adv, x)
    assert out.shape == x.shape
    assert tm.contains(out, x).tolist() == [True] * 5
    assert not bool(tm.contains(x_adv, x).any())
    assert_close(tm.project(out, x), out)


# ---------------------------------------------------------------------------- projection: mixed
@PROPERTY
@given(mixed_cases())
def test_property_mixed_projection_inside_and_idempotent(case) -> None:
    x, x_adv, p, eps = case
    tm = ThreatModel(p, eps, mixed_domain())  # type: ignore[arg-type]
    assert bool(tm.contains(x, x).all())
    out = tm.project(x_adv, x)
    assert bool(tm.contains(out, x).all()), (out - x)
    tm.domain.validate(out, x)
    assert torch.equal(out[:, IMMUTABLE], x[:, IMMUTABLE])
    assert_close(tm.project(out, x), out, atol=1e-9, rtol=1e-9)


@PROPERTY
@given(mixed_cases())
def test_property_mixed_relaxed_projection(case) -> None:
    """relax=True is the exact continuous projection onto ball ∩ box (possibly off the grid)."""
    x, x_adv, p, eps = case
    tm = ThreatModel(p, eps, mixed_domain())  # type: ignore[arg-type]
    out = tm.project(x_adv, x, relax=True)
    lo, hi = tm.delta_bounds(x)  # the domain's box, tightened to the reachable grid values
    delta = out - x
    limit = eps if p == "l0" else eps * (1 + REL)
    assert bool((norms.norm(delta, p) <= limit).all())  # type: ignore[arg-type]
    assert bool(((delta >= lo - 1e-9) & (delta <= hi + 1e-9)).all())
    for i in range(len(x)):
        z = (x_adv[i] - x[i]).numpy()
        expected = ref_delta(z, p, eps, lo[i].numpy(), hi[i].numpy())
        if p == "l0":
            dist = float(((delta[i] - x_adv[i] + x[i]) ** 2).sum())
            assert dist == pytest.approx(float(((expected - z) ** 2).sum()), rel=1e-9, abs=1e-12)
        else:
            assert_close(delta[i], torch.from_numpy(expected), atol=1e-7, rtol=1e-7)


def test_relaxed_projection_may_be_off_grid() -> None:
    tm = ThreatModel("linf", 0.3, mixed_domain())
    x = valid_from_uniform(np.full((1, F), 0.4))
    x_adv = x + 1.0
    relaxed = tm.project(x_adv, x, relax=True)
    # an integer count whose grid step exceeds eps has no other reachable value: it stays put
    assert_close(relaxed[0, 2], x[0, 2])
    wide = ThreatModel("linf", 1.5 * RES[2], mixed_domain())
    off_grid = wide.project(x_adv, x, relax=True)
    assert_close(off_grid[0, 2], x[0, 2] + RES[2])  # relaxed up to the last reachable grid value
    repaired = tm.project(x_adv, x)
    assert bool(tm.contains(repaired, x).all())
    assert_close(repaired[0, 2], x[0, 2])  # rounding 0.3 steps away goes back to x
    assert_close(repaired[0, 0], x[0, 0] + 0.3)  # continuous features keep the relaxed step


@pytest.mark.parametrize("p", ["linf", "l2", "l1"])
def test_repair_never_rounds_out_of_the_ball(p: str) -> None:
    # eps = 0.6 < one integer step: the relaxed point moves 'count' by 0.6, its nearest grid
    # point is one full step away (outside the ball), so the repair rounds towards x instead
    d = Domain(lower=[0.0, 0.0], upper=[10.0, 10.0], kinds=["integer", "continuous"])
    tm = ThreatModel(p, 0.6, d)  # type: ignore[arg-type]
    x = torch.tensor([[3.0, 5.0]])
    x_adv = torch.tensor([[3.6, 5.0]])
    # the relaxation only ranges over reachable grid values: none but x's within 0.6
    assert_close(tm.project(x_adv, x, relax=True), x)
    assert_close(tm.project(x_adv, x), x)
    # with a large enough ball the nearest grid point is taken
    assert_close(ThreatModel(p, 1.0, d).project(x_adv, x),  # type: ignore[arg-type]
                 torch.tensor([[4.0, 5.0]]))


def test_repair_keeps_one_hot_category_when_a_switch_leaves_the_ball() -> None:
    d = Domain(lower=[0.0] * 4, upper=1.0, one_hot_groups=[[0, 1, 2]])
    x = torch.tensor([[1.0, 0.0, 0.0, 0.5]])
    x_adv = torch.tensor([[0.0, 1.0, 0.0, 0.9]])
    # switching category is an L∞ move of 1 > 0.6: the relaxation already keeps x's category,
    # and only the continuous step survives
    tm = ThreatModel("linf", 0.6, d)
    assert_close(tm.project(x_adv, x, relax=True), torch.tensor([[1.0, 0.0, 0.0, 0.9]]))
    assert_close(tm.project(x_adv, x), torch.tensor([[1.0, 0.0, 0.0, 0.9]]))
    # L0 2: the two indicators are the largest gains; switching changes exactly two features
    assert_close(ThreatModel("l0", 2, d).project(x_adv, x), torch.tensor([[0.0, 1.0, 0.0, 0.5]]))
    # L0 1: half a switch is not a valid point; the result stays valid and in the ball
    one = ThreatModel("l0", 1, d)
    assert bool(one.contains(one.project(x_adv, x), x).all())
    assert_close(ThreatModel("l0", 3, d).project(x_adv, x), x_adv)
    assert_close(ThreatModel("linf", 1.0, d).project(x_adv, x), x_adv)


def test_l0_count_ignores_unchanged_features_on_a_float_grid() -> None:
    # counts scaled by 1/10: untouched features must stay bit-identical, else every one of them
    # counts as changed in the L0 ball and in reported perturbation norms
    d = Domain(lower=[0.0] * 3, upper=[1.0] * 3, kinds=["integer"] * 3, resolution=0.1)
    x = torch.tensor([[3 / 10, 7 / 10, 5 / 10]], dtype=torch.float64)
    x_adv = x.clone()
    x_adv[0, 2] = 0.9
    for eps in (1, 2, 3):
        out = ThreatModel("l0", eps, d).project(x_adv, x)
        assert torch.equal(out[:, :2], x[:, :2])
        assert_close(out[0, 2], torch.tensor(0.9, dtype=torch.float64))
        assert norms.norm(out - x, "l0").item() == 1


@pytest.mark.parametrize("p", NORMS)
def test_infinite_eps_is_domain_projection(p: str) -> None:
    d = mixed_domain()
    g = torch.Generator().manual_seed(2)
    x = valid_from_uniform(torch.rand(6, F, generator=g, dtype=torch.float64).numpy())
    x_adv = x + 3 * torch.randn(6, F, generator=g, dtype=torch.float64)
    tm = ThreatModel(p, math.inf, d)  # type: ignore[arg-type]
    assert_close(tm.project(x_adv, x), d.project(x_adv, x))
    assert_close(tm.project(x_adv, x, relax=True), d.clip(x_adv, x))
    box = ThreatModel(p, math.inf)  # type: ignore[arg-type]
    xi = torch.rand(3, 1, 8, 8, generator=g)
    xi_adv = xi + torch.randn(3, 1, 8, 8, generator=g)
    assert_close(box.project(xi_adv, xi), xi_adv.clamp(0, 1))


def test_project_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        ThreatModel("l2", 1.0).project(torch.zeros(2, 3), torch.zeros(2, 4))


def test_project_does_not_mutate_inputs() -> None:
    x = valid_from_uniform(np.full((2, F), 0.3))
    x_adv = x + 0.7
    xc, ac = x.clone(), x_adv.clone()
    ThreatModel("l2", 1.0, mixed_domain()).project(x_adv, x)
    assert torch.equal(x, xc) and torch.equal(x_adv, ac)


# ---------------------------------------------------------------------------- contains
@pytest.mark.parametrize("p", NORMS)
def test_contains_catches_each_violation(p: str) -> None:
    eps = 2.0
    tm = ThreatModel(p, eps, mixed_domain())  # type: ignore[arg-type]
    x = valid_from_uniform(np.full((1, F), 0.4))
    x[0, 1] = 0.95  # ratio close to its upper bound 1

    def ball(v: torch.Tensor) -> bool:
        return bool((norms.norm(v - x, p) <= eps).all())  # type: ignore[arg-type]

    inside = x.clone()
    inside[0, 0] += 0.25
    assert bool(tm.contains(inside, x).all())
    # each violating point below breaks exactly one rule: checked by the other two asserts
    outside_ball = x.clone()
    outside_ball[0, [0, 2, 10]] += torch.tensor([1.7, 3.0, -0.3], dtype=x.dtype)
    assert bool(tm.domain.contains(outside_ball, x).all()) and not ball(outside_ball)
    outside_box = x.clone()
    outside_box[0, 1] = 1.05
    assert ball(outside_box)
    immutable = x.clone()
    immutable[0, IMMUTABLE] += 1.0
    assert ball(immutable) and bool(tm.domain.contains(immutable).all())
    decreased = x.clone()
    decreased[0, INC] -= 0.5
    assert ball(decreased) and bool(tm.domain.contains(decreased).all())
    for bad in (outside_ball, outside_box, immutable, decreased):
        assert not bool(tm.contains(bad, x).any())
    both = torch.cat([inside, outside_box, x, immutable])
    assert tm.contains(both, x.expand_as(both)).tolist() == [True, False, True, False]


@pytest.mark.parametrize("p", ["linf", "l2", "l1"])
def test_contains_uses_relative_tolerance_on_the_radius(p: str) -> None:
    # eps = 100: the absolute slack (~1e-6) is negligible, the relative one is 1e-6
    tm = ThreatModel(p, 100.0, Domain(lower=-1e3, upper=1e3))  # type: ignore[arg-type]
    x = torch.zeros(1, 3, dtype=torch.float64)
    unit = torch.tensor([[0.6, -0.8, 0.0]], dtype=torch.float64)
    unit = unit / norms.norm(unit, p).unsqueeze(1)  # type: ignore[arg-type]
    radii = torch.tensor([100.0, 100.0 * (1 + 5e-7), 100.0 * (1 + 1e-5), 99.0],
                         dtype=torch.float64)
    points = radii.unsqueeze(1) * unit
    assert tm.contains(points, x.expand_as(points)).tolist() == [True, True, False, True]


# ---------------------------------------------------------------------------- random_point
@pytest.mark.parametrize("p", NORMS)
def test_random_point_inside_and_reproducible(p: str) -> None:
    eps = 3.0 if p == "l0" else 0.4
    for tm, x in ((ThreatModel(p, eps), torch.rand(16, 1, 8, 8)),  # type: ignore[arg-type]
                  (ThreatModel(p, eps, mixed_domain()),  # type: ignore[arg-type]
                   valid_from_uniform(np.random.default_rng(0).random((16, F))))):
        a = tm.random_point(x, torch.Generator().manual_seed(5))
        b = tm.random_point(x, torch.Generator().manual_seed(5))
        c = tm.random_point(x, torch.Generator().manual_seed(6))
        assert a.shape == x.shape and a.dtype == x.dtype
        assert bool(tm.contains(a, x).all())
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        assert not torch.equal(a, x)  # it does move
        relaxed = tm.random_point(x, torch.Generator().manual_seed(5), relax=True)
        assert bool((norms.norm(relaxed - x, p) <= eps * (1 + REL)).all())  # type: ignore[arg-type]


@pytest.mark.parametrize("p", NORMS)
def test_random_point_infinite_eps_samples_the_domain(p: str) -> None:
    tm = ThreatModel(p, math.inf, mixed_domain())  # type: ignore[arg-type]
    x = valid_from_uniform(np.random.default_rng(1).random((200, F)))
    out = tm.random_point(x, torch.Generator().manual_seed(0))
    assert bool(tm.contains(out, x).all())
    # uniform over the allowed box: the continuous feature 0 is uniform on [-1, 2] whatever x
    # is (mean 0.5, sd 3 / sqrt(12 * 200) = 0.061; 0.3 is ~5 sd)
    assert float(out[:, 0].mean()) == pytest.approx(0.5, abs=0.3)
    assert float(out[:, 0].min()) < -0.5 and float(out[:, 0].max()) > 1.5
    img = ThreatModel(p, math.inf)  # type: ignore[arg-type]
    xi = torch.rand(50, 1, 8, 8)
    oi = img.random_point(xi, torch.Generator().manual_seed(123))
    assert bool(((oi >= 0) & (oi <= 1)).all())
    # uniform on [0, 1] independently of xi: 3200 values, mean sd 0.0051, 0.03 is ~6 sd
    assert float(oi.mean()) == pytest.approx(0.5, abs=0.03)
    assert float((oi < xi).double().mean()) == pytest.approx(0.5, abs=0.05)


def test_random_point_infinite_eps_needs_bounded_domain() -> None:
    tm = ThreatModel("l2", math.inf, Domain(lower=-math.inf, upper=math.inf))
    with pytest.raises(ValueError, match="bounded domain"):
        tm.random_point(torch.zeros(2, 3))


# ---------------------------------------------------------------------------- closed forms
def _linear_case(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 10, generator=g, dtype=torch.float64)
    x = 0.3 + 0.4 * torch.rand(4, 10, generator=g, dtype=torch.float64)  # well inside [0, 1]
    return w, x


@pytest.mark.parametrize("p", ["linf", "l2", "l1"])
def test_linear_model_loss_maximiser(p: str) -> None:
    """For logits [-f, f], f = w·x + b and y = 0 the loss grows with f, so the best point of the
    ball is x + eps * argmax_{||d|| <= 1} <w, d>: eps sign(w) (L∞), eps w/||w||₂ (L2) and eps
    on the largest |w_i| (L1). One steepest-ascent step, projected, must land exactly there."""
    w, x = _linear_case(0)
    eps = 0.1
    tm = ThreatModel(p, eps)  # type: ignore[arg-type]
    step = x + eps * norms.steepest_ascent(w, p)  # type: ignore[arg-type]
    out = tm.project(step, x)
    if p == "linf":
        expected = x + eps * torch.sign(w)
    elif p == "l2":
        expected = x + eps * w / w.norm(dim=1, keepdim=True)
    else:
        expected = x.clone()
        i = w.abs().argmax(1)
        expected[torch.arange(4), i] += eps * torch.sign(w[torch.arange(4), i])
    assert_close(out, expected)
    # the gain in f is eps times the dual norm of w, and no random point of the ball does better
    gain = ((out - x) * w).sum(1)
    assert_close(gain, eps * norms.norm(w, norms.dual(p)))  # type: ignore[arg-type]
    reps = 200
    others = tm.random_point(x.repeat(reps, 1), torch.Generator().manual_seed(1))
    assert bool((((others - x.repeat(reps, 1)) * w.repeat(reps, 1)).sum(1)
                 <= gain.repeat(reps) + 1e-12).all())
    # and projecting a longer step along the same direction does not change the answer
    assert_close(tm.project(x + 10 * eps * norms.steepest_ascent(w, p), x),  # type: ignore[arg-type]
                 expected)


def test_delta_bounds_keep_only_reachable_grid_values() -> None:
    """Binary flags cannot flip and coarse integers cannot move when eps is below their step."""
    domain = Domain(0.0, 1.0, kinds={0: "binary", 1: "integer", 2: "integer"},
                    resolution=[1.0, 0.2, 0.05, 1.0], one_hot_groups=[], n_features=4)
    x = torch.tensor([[0.0, 0.4, 0.5, 0.5]])
    lo, hi = ThreatModel("linf", 0.1, domain).delta_bounds(x)
    assert lo.tolist() == [[0.0, 0.0, pytest.approx(-0.1), -0.5]]  # continuous: domain only
    assert hi.tolist() == [[0.0, 0.0, pytest.approx(0.1), 0.5]]
    lo, hi = ThreatModel("l2", 0.45, domain).delta_bounds(x)
    assert lo[0, :2].tolist() == [0.0, pytest.approx(-0.4)] and hi[0, :2].tolist() == \
        [0.0, pytest.approx(0.4)]
    lo, hi = ThreatModel("linf", 1.0, domain).delta_bounds(x)
    assert (lo[0, 0], hi[0, 0]) == (0.0, 1.0)  # eps = 1: the flag may flip
    lo_d, hi_d = domain.delta_bounds(x)
    for threat in (ThreatModel("l0", 2, domain), ThreatModel("l2", math.inf, domain)):
        lo, hi = threat.delta_bounds(x)
        assert torch.equal(lo, lo_d) and torch.equal(hi, hi_d)

"""Unit tests for advlab.domain.Domain: construction checks, membership, projection, validation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.testing import assert_close

from advlab.domain import Domain

PROPERTY = settings(max_examples=100, deadline=None)

# A mixed tabular domain (a network-flow-like record):
#   0 dur       continuous [-1, 2]
#   1 ratio     continuous [0, 1]
#   2 count     integer    [0, 10], step 1
#   3 frac      integer    [0, 2],  step 0.25 (a min-max scaled count)
#   4 flag      binary     {0, 1}
#   5-7 proto   one-hot group (tcp, udp, icmp)
#   8 port      integer    [0, 3], immutable
#   9 bytes     integer    [0, 20], step 0.5, increase-only
#  10 ttl       continuous [0, 1], decrease-only
NAMES = ("dur", "ratio", "count", "frac", "flag", "tcp", "udp", "icmp", "port", "bytes", "ttl")
LOWER = (-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
UPPER = (2.0, 1.0, 10.0, 2.0, 1.0, 1.0, 1.0, 1.0, 3.0, 20.0, 1.0)
KINDS = ("continuous", "continuous", "integer", "integer", "binary", "continuous", "continuous",
         "continuous", "integer", "integer", "continuous")
RES = (1.0, 1.0, 1.0, 0.25, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0)
GROUP = (5, 6, 7)
IMMUTABLE, INC, DEC = 8, 9, 10
F = len(NAMES)


def mixed_domain(**overrides) -> Domain:
    kw = {"lower": LOWER, "upper": UPPER, "kinds": KINDS, "resolution": RES,
          "one_hot_groups": [GROUP], "immutable": [IMMUTABLE], "increase_only": [INC],
          "decrease_only": [DEC], "feature_names": NAMES}
    kw.update(overrides)
    return Domain(**kw)


def valid_from_uniform(u: np.ndarray) -> torch.Tensor:
    """Map u in [0, 1]^(N, F) to valid records of the mixed domain, independently of Domain."""
    lo, hi, res = np.array(LOWER), np.array(UPPER), np.array(RES)
    x = lo + u * (hi - lo)
    for j, kind in enumerate(KINDS):
        if kind == "integer":
            steps = round((hi[j] - lo[j]) / res[j])
            x[:, j] = lo[j] + np.minimum(np.floor(u[:, j] * (steps + 1)), steps) * res[j]
        elif kind == "binary":
            x[:, j] = np.where(u[:, j] < 0.5, lo[j], hi[j])
    hot = np.argmax(u[:, list(GROUP)], axis=1)
    x[:, list(GROUP)] = np.eye(len(GROUP))[hot]
    return torch.from_numpy(x)


@st.composite
def mixed_pairs(draw):
    """A valid x0 (N, F) and an arbitrary x near it (partly unchanged, partly far outside)."""
    n = draw(st.integers(1, 5))
    u = draw(hnp.arrays(np.float64, (n, F), elements=st.floats(0, 1)))
    noise = draw(hnp.arrays(np.float64, (n, F), elements=st.one_of(
        st.floats(-4, 4), st.just(0.0), st.sampled_from([-1.0, -0.5, 0.5, 1.0]))))
    x0 = valid_from_uniform(u)
    return x0, x0 + torch.from_numpy(noise)


# ---------------------------------------------------------------------------- construction
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lower": 1.0, "upper": 0.0}, "lower > upper"),
    ({"lower": [0.0, 2.0], "upper": [1.0, 1.0], "feature_names": ["a", "b"]},
     r"lower > upper for feature 1 \('b'\)"),
    ({"lower": [0.0, 0.0], "upper": [1.0, 1.0], "kinds": ["continuous", "float"]}, "kind"),
    ({"lower": [0.0] * 3, "upper": 1.0, "kinds": {5: "integer"}}, "index 5 is out of range"),
    ({"lower": [0.0] * 3, "upper": 1.0, "kinds": {-1: "integer"}}, "index -1 is out of range"),
    ({"lower": [0.0] * 3, "upper": 1.0, "kinds": ["integer"] * 2}, "2 kinds for 3 features"),
    ({"lower": [0.0] * 3, "upper": 1.0, "immutable": [3]}, "immutable index 3 is out of range"),
    ({"lower": [0.0] * 3, "upper": 1.0, "increase_only": [-1]}, "increase_only index -1"),
    ({"lower": [0.0] * 3, "upper": 1.0, "immutable": [True, False]}, "mask has 2 entries"),
    ({"lower": [0.0] * 4, "upper": 1.0, "one_hot_groups": [[0, 1], [1, 2]]},
     "feature 1 is in two one-hot groups"),
    ({"lower": [0.0] * 4, "upper": 1.0, "one_hot_groups": [[0, 4]]}, "one-hot index 4"),
    ({"lower": [0.0] * 4, "upper": 1.0, "one_hot_groups": [[0]]}, "at least two"),
    ({"lower": [0.0] * 4, "upper": 1.0, "one_hot_groups": [[0, 1]], "increase_only": [1]},
     "cannot be monotone"),
    ({"lower": [0.0] * 4, "upper": 2.0, "one_hot_groups": [[0, 1]]}, r"needs bounds \[0, 1\]"),
    ({"lower": [0.0] * 3, "upper": [1.0] * 4}, "bounds have 4 entries"),
    ({"lower": [0.0] * 3, "upper": 1.0, "n_features": 4}, "n_features=4"),
    ({"lower": [0.0] * 3, "upper": 1.0, "feature_names": ["a", "b"]}, "2 feature_names"),
    ({"lower": [0.0] * 3, "upper": 1.0, "resolution": [1.0, 2.0]}, "resolution has 2 entries"),
    ({"lower": [0.0] * 3, "upper": 1.0, "resolution": 0.0}, "resolution must be > 0"),
    ({"lower": [0.0] * 3, "upper": 1.0, "increase_only": [1], "decrease_only": [1]},
     "both increase- and decrease-only"),
    ({"lower": [0.0, math.nan], "upper": 1.0}, "NaN"),
    ({"kinds": ["integer"]}, "kinds need n_features"),
    ({"immutable": [0]}, "needs n_features"),
])
def test_construction_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Domain(**kwargs)


def test_is_frozen_and_normalised() -> None:
    d = mixed_domain()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.lower = 0.0  # type: ignore[misc]
    assert d.n_features == F
    assert d.lower.shape == (F,) and d.resolution.shape == (F,)  # type: ignore[union-attr]
    assert d.one_hot_groups == (GROUP,)
    assert d.is_discrete and not d.is_box
    assert Domain().is_box and not Domain().is_discrete
    assert torch.equal(d.kind_mask("binary"), torch.tensor([j == 4 for j in range(F)]))


def test_scalar_bounds_with_n_features_and_masks() -> None:
    d = Domain(lower=-1.0, upper=1.0, n_features=3, immutable=torch.tensor([False, True, False]))
    lo, hi = d.delta_bounds(torch.zeros(2, 3))
    assert_close(lo, torch.tensor([[-1.0, 0.0, -1.0]] * 2))
    assert_close(hi, torch.tensor([[1.0, 0.0, 1.0]] * 2))


def test_scalar_bounds_property() -> None:
    """Shared bounds come back as floats (FGSM clamps with them); per-feature ones do not."""
    assert Domain().scalar_bounds == (0.0, 1.0)
    assert Domain(lower=-2.0, upper=3.0, n_features=4).scalar_bounds == (-2.0, 3.0)
    assert Domain(lower=[0.0, 0.0], upper=[1.0, 1.0]).scalar_bounds == (0.0, 1.0)
    assert Domain(lower=[0.0, 0.0], upper=[1.0, 2.0]).scalar_bounds is None
    assert mixed_domain().scalar_bounds is None


# ---------------------------------------------------------------------------- contains
def test_contains_box_per_sample() -> None:
    d = Domain(lower=[0.0, -1.0], upper=[1.0, 1.0])
    x = torch.tensor([[0.5, 0.0], [1.5, 0.0], [0.5, -1.2], [0.0, 1.0], [math.nan, 0.0]])
    out = d.contains(x)
    assert out.dtype == torch.bool and out.shape == (5,)
    assert out.tolist() == [True, False, False, True, False]


def test_contains_integer_grid_with_resolution() -> None:
    d = Domain(lower=[0.0], upper=[2.0], kinds=["integer"], resolution=0.25)
    x = torch.tensor([[0.5], [0.6], [2.0], [0.0], [1.75], [2.25]])
    assert d.contains(x).tolist() == [True, False, True, True, True, False]


def test_contains_binary_two_valued() -> None:
    d = Domain(lower=[-1.0], upper=[3.0], kinds=["binary"])
    x = torch.tensor([[-1.0], [3.0], [0.0], [1.0]])
    assert d.contains(x).tolist() == [True, True, False, False]


def test_contains_one_hot_exactly_one() -> None:
    d = Domain(lower=[0.0] * 4, upper=1.0, one_hot_groups=[[0, 1, 2]])
    x = torch.tensor([[0.0, 1.0, 0.0, 0.3], [1.0, 1.0, 0.0, 0.3], [0.0, 0.0, 0.0, 0.3],
                      [0.5, 0.5, 0.0, 0.3], [0.0, 0.0, 1.0, 0.0]])
    assert d.contains(x).tolist() == [True, False, False, False, True]


def test_contains_relative_to_x0() -> None:
    d = mixed_domain()
    x0 = valid_from_uniform(np.full((1, F), 0.4))
    assert bool(d.contains(x0, x0).all())
    cases = {IMMUTABLE: 1.0, INC: -0.5, DEC: 0.1}  # each breaks its rule, all inside the bounds
    for j, step in cases.items():
        x = x0.clone()
        x[0, j] += step
        assert bool(d.contains(x).all()), j  # fine without x0
        assert not bool(d.contains(x, x0).any()), j
    ok = x0.clone()
    ok[0, INC] += 0.5
    ok[0, DEC] -= 0.1
    assert bool(d.contains(ok, x0).all())


def test_violations_marks_features() -> None:
    d = mixed_domain()
    x0 = valid_from_uniform(np.full((2, F), 0.4))
    x = x0.clone()
    x[1, 2] = 3.5  # off-grid integer
    x[1, 5:8] = torch.tensor([1.0, 1.0, 0.0])  # two categories
    bad = d.violations(x, x0)
    assert bad.shape == (2, F)
    assert not bool(bad[0].any())
    assert sorted(bad[1].nonzero()[:, 0].tolist()) == [2, 5, 6, 7]


# ---------------------------------------------------------------------------- project
@PROPERTY
@given(mixed_pairs())
def test_property_project_is_valid_and_idempotent(pair) -> None:
    x0, x = pair
    d = mixed_domain()
    assert bool(d.contains(x0, x0).all())  # the generator makes valid points
    p = d.project(x, x0)
    assert p.shape == x.shape and p.dtype == x.dtype
    assert bool(d.contains(p, x0).all()), d.violations(p, x0).nonzero()
    d.validate(p, x0)
    assert_close(d.project(p, x0), p, atol=0, rtol=0)
    assert torch.equal(p[:, IMMUTABLE], x0[:, IMMUTABLE])
    assert bool((p[:, INC] >= x0[:, INC]).all()) and bool((p[:, DEC] <= x0[:, DEC]).all())
    free = d.project(x)  # without x0: only the domain itself
    assert bool(d.contains(free).all())
    assert_close(d.project(free), free, atol=0, rtol=0)


@PROPERTY
@given(mixed_pairs())
def test_property_project_is_nearest_per_feature(pair) -> None:
    """Per-feature closed forms of the nearest valid point (the domain is separable except for
    the one-hot group, whose nearest one-hot vector in L2 is the arg-max of x)."""
    x0, x = pair
    p = mixed_domain().project(x, x0)
    assert_close(p[:, 0], x[:, 0].clamp(-1, 2))
    assert_close(p[:, 2], torch.round(x[:, 2].clamp(0, 10)))
    assert_close(p[:, 3], torch.round(x[:, 3].clamp(0, 2) * 4) / 4)
    assert_close(p[:, 4], (x[:, 4] >= 0.5).double())
    hot = x[:, list(GROUP)].argmax(1)
    assert_close(p[:, list(GROUP)], torch.eye(3, dtype=x.dtype)[hot])
    assert_close(p[:, INC], torch.round(torch.maximum(x[:, INC], x0[:, INC]).clamp(0, 20) * 2) / 2)
    assert_close(p[:, DEC], torch.minimum(x[:, DEC], x0[:, DEC]).clamp(0, 1))
    # a brute-force check of the nearest point: no valid point of a random sample is closer
    g = torch.Generator().manual_seed(0)
    u = torch.rand(256, F, generator=g, dtype=torch.float64).numpy()
    cand = valid_from_uniform(u)
    for i in range(len(x)):
        c = cand.clone()
        c[:, IMMUTABLE] = x0[i, IMMUTABLE]
        c = c[mixed_domain().contains(c, x0[i].expand_as(c))]
        assert bool(((p[i] - x[i]).norm() <= (c - x[i]).norm(dim=1) + 1e-9).all())


def test_project_one_hot_picks_arg_max() -> None:
    d = Domain(lower=[0.0] * 4, upper=1.0, one_hot_groups=[[0, 1, 2]])
    x = torch.tensor([[0.2, 0.7, 0.1, 0.5], [-1.0, -0.2, -3.0, 0.5], [1.5, 2.0, 0.0, 0.5],
                      [0.4, 0.4, 0.1, 0.5]])
    out = d.project(x)
    expected = torch.tensor([[0.0, 1.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5],
                             [1.0, 0.0, 0.0, 0.5]])  # a tie goes to the first category
    assert_close(out, expected)


def test_project_integer_rounds_to_nearest_grid_point_within_bounds() -> None:
    # upper 2.7 is not on the grid {0, 0.25, ...}: values rounding to 2.75 must give 2.5
    d = Domain(lower=[0.0], upper=[2.7], kinds=["integer"], resolution=0.25)
    x = torch.tensor([[0.6], [0.62], [0.63], [-3.0], [2.58], [2.65], [2.7], [9.0]])
    expected = torch.tensor([[0.5], [0.5], [0.75], [0.0], [2.5], [2.5], [2.5], [2.5]])
    assert_close(d.project(x), expected)
    assert bool(d.contains(d.project(x)).all())


def test_project_keeps_on_grid_values_bit_identical() -> None:
    # min-max scaled counts: k / 10 is on the 0.1-grid only up to rounding (3 * 0.1 != 0.3 in
    # float), so re-rounding a valid value would fake a change (an L0 count would see it)
    d = Domain(lower=[0.0] * 4, upper=[1.0] * 4, kinds=["integer"] * 4, resolution=0.1)
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([[3 / 10, 7 / 10, 6 / 10, 1.0]], dtype=dtype)
        assert torch.equal(d.project(x), x)
        moved = x + torch.tensor([[0.04, -0.06, 0.0, 0.0]], dtype=dtype)
        out = d.project(moved)
        assert torch.equal(out[:, 2:], x[:, 2:])
        assert_close(out[:, :2], torch.tensor([[0.3, 0.6]], dtype=dtype))


def test_project_restores_immutable_exactly() -> None:
    # an immutable feature is copied from x0, even when x0 itself is off the grid
    d = Domain(lower=[0.0, 0.0], upper=[1.0, 1.0], kinds=["integer", "integer"],
               resolution=0.1, immutable=[0])
    x0 = torch.tensor([[0.35, 0.7]], dtype=torch.float64)
    out = d.project(torch.tensor([[0.9, 0.2]], dtype=torch.float64), x0)
    assert out[0, 0].item() == 0.35
    assert_close(out[0, 1], torch.tensor(0.2, dtype=torch.float64))


def test_project_monotone_and_immutable() -> None:
    d = Domain(lower=[0.0] * 3, upper=[10.0] * 3, kinds=["integer"] * 3, immutable=[0],
               increase_only=[1], decrease_only=[2])
    x0 = torch.tensor([[4.0, 4.0, 4.0]])
    x = torch.tensor([[7.2, 2.9, 6.6]])
    assert_close(d.project(x, x0), torch.tensor([[4.0, 4.0, 4.0]]))
    x = torch.tensor([[1.0, 6.6, 1.2]])
    assert_close(d.project(x, x0), torch.tensor([[4.0, 7.0, 1.0]]))
    assert_close(d.clip(x, x0), torch.tensor([[4.0, 6.6, 1.2]]))  # relaxation: no rounding


def test_project_partially_immutable_one_hot_group_stays_valid() -> None:
    # category 1 is immutable: when it is hot the whole group is fixed, when it is cold it can
    # not be chosen, whatever the scores say (ties at the bound included)
    d = Domain(lower=[0.0] * 3, upper=1.0, one_hot_groups=[[0, 1, 2]], immutable=[1])
    x0 = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 5.0, 0.4]])
    out = d.project(x, x0)
    assert bool(d.contains(out, x0).all()), out
    assert_close(out, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_project_does_not_mutate_and_keeps_dtype() -> None:
    d = mixed_domain()
    x0 = valid_from_uniform(np.full((3, F), 0.3)).float()
    x = x0 + torch.linspace(-2, 2, F)
    x_copy, x0_copy = x.clone(), x0.clone()
    out = d.project(x, x0)
    assert out.dtype == torch.float32 and out.device == x.device
    assert torch.equal(x, x_copy) and torch.equal(x0, x0_copy)
    assert bool(d.contains(out, x0).all())


def test_project_shape_mismatch_raises() -> None:
    d = mixed_domain()
    with pytest.raises(ValueError, match="x0"):
        d.project(torch.zeros(2, F), torch.zeros(3, F))
    with pytest.raises(ValueError, match="features"):
        d.project(torch.zeros(2, F + 1))


# ---------------------------------------------------------------------------- validate
def test_validate_passes_on_valid_data() -> None:
    d = mixed_domain()
    x0 = valid_from_uniform(np.random.default_rng(0).random((20, F)))
    d.validate(x0)
    d.validate(x0, x0)


@pytest.mark.parametrize(("feature", "value", "reason"), [
    (0, 2.5, r"bounds \[-1, 2\]"),
    (3, 0.6, "integer feature off the grid 0 \\+ k \\* 0.25"),
    (4, 0.5, "binary feature"),
    (5, 0.5, r"one-hot group \[5, 6, 7\] is not one-hot: values \[0.5, 0, 0\]"),
    (IMMUTABLE, None, "immutable feature changed from"),
    (INC, -0.5, "increase-only feature changed from"),
    (DEC, 0.1, "decrease-only feature changed from"),
    (1, math.inf, "not finite"),
])
def test_validate_names_sample_feature_and_reason(feature: int, value, reason: str) -> None:
    d = mixed_domain()
    x0 = valid_from_uniform(np.full((4, F), 0.4))
    x = x0.clone()
    if feature == IMMUTABLE:
        x[2, feature] = (x0[2, feature] + 1) % 4
    elif feature in (INC, DEC):
        x[2, feature] += value
    else:
        x[2, feature] = value
    x[3] = x[2]  # a second invalid sample: the first one (2) is named, and both are counted
    pattern = rf"^batch: sample 2, feature {feature} \('{NAMES[feature]}'\) = .*\({reason}.*\); " \
              r"2 of 4 samples are invalid$"
    with pytest.raises(ValueError, match=pattern):
        d.validate(x, x0, name="batch")


def test_validate_names_monotone_rule_for_an_on_grid_integer() -> None:
    # the value is on the integer grid: the rule broken is the monotone one, not the kind
    d = mixed_domain()
    x0 = valid_from_uniform(np.full((1, F), 0.4))
    x = x0.clone()
    x[0, INC] -= 1.0
    with pytest.raises(ValueError, match=r"feature 9 \('bytes'\) .*increase-only feature"):
        d.validate(x, x0)


def test_validate_without_names_uses_index() -> None:
    d = Domain(lower=[0.0, 0.0], upper=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"^x: sample 1, feature 1 = 3 .*bounds \[0, 1\]"):
        d.validate(torch.tensor([[0.5, 0.5], [0.5, 3.0]]))


# ---------------------------------------------------------------------------- delta_bounds
@PROPERTY
@given(mixed_pairs())
def test_property_delta_bounds_contain_zero(pair) -> None:
    x0, _ = pair
    d = mixed_domain()
    lo, hi = d.delta_bounds(x0)
    assert lo.shape == x0.shape and hi.shape == x0.shape
    assert bool((lo <= 0).all()) and bool((hi >= 0).all())
    assert bool((lo[:, IMMUTABLE] == 0).all()) and bool((hi[:, IMMUTABLE] == 0).all())
    assert bool((lo[:, INC] == 0).all()) and bool((hi[:, DEC] == 0).all())
    assert_close(x0 + hi, torch.where(torch.arange(F) == DEC, x0, torch.tensor(UPPER).double())
                 .where(torch.arange(F) != IMMUTABLE, x0))


def test_delta_bounds_values() -> None:
    d = Domain(lower=[0.0, -1.0, 0.0], upper=[1.0, 1.0, 5.0], increase_only=[2])
    x0 = torch.tensor([[0.25, 0.5, 2.0]])
    lo, hi = d.delta_bounds(x0)
    assert_close(lo, torch.tensor([[-0.25, -1.5, 0.0]]))
    assert_close(hi, torch.tensor([[0.75, 0.5, 3.0]]))


# ---------------------------------------------------------------------------- images
def test_image_shapes_with_scalar_bounds() -> None:
    d = Domain()  # [0, 1]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 8, 8, generator=g) * 3 - 1
    out = d.project(x)
    assert out.shape == (3, 1, 8, 8)
    assert_close(out, x.clamp(0, 1))
    assert d.contains(out).tolist() == [True] * 3
    assert not bool(d.contains(x).any())
    x0 = torch.rand(3, 1, 8, 8, generator=g)
    lo, hi = d.delta_bounds(x0)
    assert lo.shape == x0.shape
    assert_close(lo, -x0)
    assert_close(hi, 1 - x0)
    assert_close(d.clip(x, x0), x.clamp(0, 1))
    d.validate(x0)
    with pytest.raises(ValueError, match="sample 0"):
        d.validate(x)


def test_image_shapes_with_n_features() -> None:
    d = Domain(lower=0.0, upper=1.0, n_features=64, immutable=list(range(8)))
    x0 = torch.full((2, 1, 8, 8), 0.5)
    x = torch.ones(2, 1, 8, 8)
    out = d.project(x, x0)
    assert out.shape == x.shape
    assert_close(out[:, 0, 0], x0[:, 0, 0])  # first row immutable
    assert_close(out[:, 0, 1:], x[:, 0, 1:])
    with pytest.raises(ValueError, match="features"):
        d.project(torch.zeros(2, 1, 4, 4))

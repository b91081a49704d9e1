"""Reference tests for advlab.norms: closed forms, brute force and bisection references.

Every projection is checked against an independent reference written here (a clamp, a rescale,
bisection on the KKT multiplier, or brute force over supports for L0), plus feasibility,
idempotence and the variational inequality ``<z - p, q - p> <= 0`` for feasible ``q`` (the
characterisation of the Euclidean projection onto a convex set, which any suboptimal but
feasible answer breaks).
"""

from __future__ import annotations

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

NORMS = ("linf", "l2", "l1", "l0")
CONVEX = ("linf", "l2", "l1")
PROPERTY = settings(max_examples=100, deadline=None)
REL = 1e-6  # relative tolerance on the radius, as in ThreatModel.contains


# ---------------------------------------------------------------------------- references
def ref_norm(v: np.ndarray, p: str) -> float:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if p == "linf":
        return float(np.abs(v).max()) if v.size else 0.0
    if p == "l2":
        return float(np.sqrt((v**2).sum()))
    if p == "l1":
        return float(np.abs(v).sum())
    return float((v != 0).sum())


def _bisect(f, lo: float, hi: float, target: float, increasing: bool, iters: int = 200) -> float:
    """Solve f(t) = target for a monotone f on [lo, hi]."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = f(mid) > target
        if above == increasing:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _soft(z: np.ndarray, tau: float) -> np.ndarray:
    return np.sign(z) * np.maximum(np.abs(z) - tau, 0.0)


def ref_project_one(z: np.ndarray, p: str, eps: float, lo: np.ndarray | None,
                    hi: np.ndarray | None) -> np.ndarray:
    """Reference projection of one flat vector (float64 numpy)."""
    z = np.asarray(z, dtype=np.float64)
    lo = np.full_like(z, -np.inf) if lo is None else np.asarray(lo, dtype=np.float64)
    hi = np.full_like(z, np.inf) if hi is None else np.asarray(hi, dtype=np.float64)
    box = np.clip(z, lo, hi)
    if p == "linf":
        return np.clip(np.clip(z, -eps, eps), lo, hi)
    if p == "l2":
        if ref_norm(box, "l2") <= eps:
            return box
        s = _bisect(lambda s: ref_norm(np.clip(s * z, lo, hi), "l2"), 0.0, 1.0, eps, True)
        return np.clip(s * z, lo, hi)
    if p == "l1":
        if ref_norm(box, "l1") <= eps:
            return box
        top = float(np.abs(z).max())
        tau = _bisect(lambda t: ref_norm(np.clip(_soft(z, t), lo, hi), "l1"), 0.0, top, eps,
                      False)
        return np.clip(_soft(z, tau), lo, hi)
    raise AssertionError(p)


def ref_l0_distance(z: np.ndarray, k: int, lo: np.ndarray | None, hi: np.ndarray | None) -> float:
    """Brute force over supports of size <= k: the smallest squared distance to the feasible set."""
    z = np.asarray(z, dtype=np.float64)
    kept = z if lo is None else np.clip(z, lo, hi)
    best = math.inf
    for size in range(min(k, z.size) + 1):
        for support in itertools.combinations(range(z.size), size):
            d = np.zeros_like(z)
            d[list(support)] = kept[list(support)]
            best = min(best, float(((d - z) ** 2).sum()))
    return best


# ---------------------------------------------------------------------------- strategies
@st.composite
def problems(draw, box: bool, per_sample_eps: bool = False, max_d: int = 6):
    """A batch z (N, D) in float64, a radius and optionally a box lower <= 0 <= upper."""
    n = draw(st.integers(1, 4))
    d = draw(st.integers(1, max_d))
    value = st.one_of(st.floats(-10, 10, allow_nan=False),
                      st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0]))  # ties and exact zeros
    z = draw(hnp.arrays(np.float64, (n, d), elements=value))
    if per_sample_eps:
        eps = torch.from_numpy(draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.01, 5))))
    else:
        eps = draw(st.floats(0.01, 5))
    lo = hi = None
    if box:
        lo = torch.from_numpy(draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-5, 0))))
        hi = torch.from_numpy(draw(hnp.arrays(np.float64, (n, d), elements=st.floats(0, 5))))
    return torch.from_numpy(z), eps, lo, hi


def _eps_list(eps, n: int) -> list[float]:
    return [float(e) for e in eps] if isinstance(eps, torch.Tensor) else [float(eps)] * n


def _box_kw(lo, hi) -> dict:
    return {} if lo is None else {"lower": lo, "upper": hi}


def _in_box(out: torch.Tensor, lo, hi) -> bool:
    return lo is None or bool(((out >= lo) & (out <= hi)).all())


# ---------------------------------------------------------------------------- norm / dual
def test_norm_hand_values() -> None:
    x = torch.tensor([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 2.0, -2.0]])
    assert_close(norms.norm(x, "linf"), torch.tensor([4.0, 0.0, 2.0]))
    assert_close(norms.norm(x, "l2"), torch.tensor([5.0, 0.0, 3.0]))
    assert_close(norms.norm(x, "l1"), torch.tensor([7.0, 0.0, 5.0]))
    assert_close(norms.norm(x, "l0"), torch.tensor([2.0, 0.0, 3.0]))


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_norm_image_batch_shape_dtype(p: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, 4, 4, generator=g, dtype=dtype)
    x[2] = 0
    out = norms.norm(x, p)  # type: ignore[arg-type]
    assert out.shape == (5,)
    assert out.dtype == dtype and out.device == x.device
    expected = torch.tensor([ref_norm(x[i].numpy(), p) for i in range(5)], dtype=dtype)
    assert_close(out, expected)
    assert out[2] == 0


def test_norm_rejects_unknown_norm_and_scalar() -> None:
    with pytest.raises(ValueError, match="norm must be one of"):
        norms.norm(torch.zeros(2, 3), "l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch"):
        norms.norm(torch.tensor(1.0), "l2")


def test_dual_pairs() -> None:
    assert norms.dual("linf") == "l1"
    assert norms.dual("l1") == "linf"
    assert norms.dual("l2") == "l2"
    with pytest.raises(ValueError, match="l0|L0"):
        norms.dual("l0")


# ---------------------------------------------------------------------------- projection values
def test_project_l1_known_value() -> None:
    out = norms.project(torch.tensor([[3.0, 1.0]]), "l1", 2.0)
    assert_close(out, torch.tensor([[2.0, 0.0]]))


def test_project_l1_known_value_soft_threshold() -> None:
    # |z| = (3, 2, -1), eps = 3: tau solves (3 - tau) + (2 - tau) = 3 -> tau = 1.
    out = norms.project(torch.tensor([[3.0, -2.0, 1.0]]), "l1", 3.0)
    assert_close(out, torch.tensor([[2.0, -1.0, 0.0]]))


def test_project_l2_rescales() -> None:
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    out = norms.project(z, "l2", 1.0)
    assert_close(out, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


def test_project_linf_clamps() -> None:
    z = torch.tensor([[3.0, -0.2, -4.0]])
    assert_close(norms.project(z, "linf", 0.5), torch.tensor([[0.5, -0.2, -0.5]]))


def test_project_l0_keeps_largest() -> None:
    z = torch.tensor([[0.5, -3.0, 2.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    out = norms.project(z, "l0", 2)
    assert_close(out, torch.tensor([[0.0, -3.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))


def test_project_l0_with_box_keeps_largest_gain() -> None:
    # Clipped to the box, coordinate 0 keeps only 0.1 (gain 0.1^2 - ... small) while coordinate 1
    # keeps 2 of its 2: keeping coordinate 1 saves more distance, although |z_0| is larger.
    z = torch.tensor([[3.0, 2.0, 0.5]])
    lo = torch.tensor([[0.0, 0.0, 0.0]])
    hi = torch.tensor([[0.1, 5.0, 5.0]])
    out = norms.project(z, "l0", 1, lower=lo, upper=hi)
    assert_close(out, torch.tensor([[0.0, 2.0, 0.0]]))


def test_project_l2_box_known_value() -> None:
    # z = (3, 4), box upper (1, 10): the KKT point clip(s z) with s such that 1 + 16 s^2 = 4.
    z = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    out = norms.project(z, "l2", 2.0, lower=torch.zeros(1, 2, dtype=torch.float64),
                        upper=torch.tensor([[1.0, 10.0]], dtype=torch.float64))
    assert_close(out, torch.tensor([[1.0, math.sqrt(3.0)]], dtype=torch.float64))


def test_project_l1_box_known_value() -> None:
    # z = (3, 1, -2), box (-inf.. 1] on coordinate 0: clip(soft(z, tau)) with
    # 1 + (1 - tau) + (2 - tau) = 2.5 -> tau = 0.75, coordinate 0 stays capped at 1.
    z = torch.tensor([[3.0, 1.0, -2.0]], dtype=torch.float64)
    lo = torch.full((1, 3), -10.0, dtype=torch.float64)
    hi = torch.tensor([[1.0, 10.0, 10.0]], dtype=torch.float64)
    out = norms.project(z, "l1", 2.5, lower=lo, upper=hi)
    assert_close(out, torch.tensor([[1.0, 0.25, -1.25]], dtype=torch.float64))


@pytest.mark.parametrize("p", ["l2", "l1"])
def test_project_box_feasible_point_with_saturated_coordinates_is_fixed(p: str) -> None:
    # Regression (found by hypothesis): a feasible point sitting on the sphere with every
    # coordinate saturated or free must come back unchanged. A rounding residue in the L2
    # breakpoint energies used to be divided by a clamped 1e-12, shrinking the point ~20x.
    z = torch.full((1, 6), -2.0, dtype=torch.float64)
    lo = torch.tensor([[0.0, -1.0, -1.0, -2.0, -2.0, -2.0]], dtype=torch.float64)
    hi = torch.zeros(1, 6, dtype=torch.float64)
    once = norms.project(z, p, 3.0, lower=lo, upper=hi)  # type: ignore[arg-type]
    expected = ref_project_one(z[0].numpy(), p, 3.0, lo[0].numpy(), hi[0].numpy())
    assert_close(once[0], torch.from_numpy(expected), atol=1e-9, rtol=1e-9)
    assert_close(norms.project(once, p, 3.0, lower=lo, upper=hi),  # type: ignore[arg-type]
                 once, atol=1e-12, rtol=1e-12)


def test_project_l2_box_tiny_scale_exact() -> None:
    # Projection commutes with scaling: at scale 1e-7 coordinate 0 saturates at its bound 1e-7
    # and the two free ones scale by s, 1e-14 + s^2 * 2e-14 = eps^2 = 2e-14 -> s = sqrt(1/2).
    # (The energies are ~1e-14: an absolute guard like clamp_min(1e-12) breaks this.)
    z = torch.tensor([[3e-7, 1e-7, -1e-7]], dtype=torch.float64)
    lo = -torch.ones(1, 3, dtype=torch.float64)
    hi = torch.tensor([[1e-7, 1.0, 1.0]], dtype=torch.float64)
    out = norms.project(z, "l2", math.sqrt(2) * 1e-7, lower=lo, upper=hi)
    s = math.sqrt(0.5)
    assert_close(out, torch.tensor([[1e-7, s * 1e-7, -s * 1e-7]], dtype=torch.float64),
                 atol=0, rtol=1e-9)


def test_project_l0_count_is_rounded_down_before_any_cast() -> None:
    # 1.9999999999999991 allows one coordinate, also for float32 data (where the float would
    # round to 2.0 if it were cast before flooring).
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor([[1.0, 2.0, 0.5]], dtype=dtype)
        out = norms.project(z, "l0", 1.9999999999999991)
        assert_close(out, torch.tensor([[0.0, 2.0, 0.0]], dtype=dtype))
        u = norms.sample_ball(z, "l0", 1.9999999999999991,
                              generator=torch.Generator().manual_seed(0))
        assert int(norms.norm(u, "l0")) == 1


@pytest.mark.parametrize("p", NORMS)
def test_project_image_shape_and_box_broadcast(p: str) -> None:
    g = torch.Generator().manual_seed(2)
    z = torch.randn(3, 2, 4, 4, generator=g)
    lo = -torch.rand(2, 4, 4, generator=g)  # broadcast over the batch
    hi = torch.rand(2, 4, 4, generator=g)
    eps = 3.0 if p == "l0" else 0.7
    out = norms.project(z, p, eps, lower=lo, upper=hi)  # type: ignore[arg-type]
    assert out.shape == z.shape
    assert bool(((out >= lo) & (out <= hi)).all())
    assert bool((norms.norm(out, p) <= eps * (1 + REL)).all())  # type: ignore[arg-type]
    flat = out.reshape(3, -1)
    for i in range(3):  # the image layout must not change the answer (it is per flat sample)
        one = norms.project(z[i:i + 1].reshape(1, -1), p, eps,  # type: ignore[arg-type]
                            lower=lo.reshape(1, -1), upper=hi.reshape(1, -1))
        assert_close(flat[i:i + 1], one)


@pytest.mark.parametrize("p", ["l2", "l1"])
def test_project_infinite_eps_is_identity_or_box_clip(p: str) -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 7, generator=g) * 5
    assert_close(norms.project(z, p, math.inf), z)  # type: ignore[arg-type]
    lo, hi = -torch.rand(4, 7, generator=g), torch.rand(4, 7, generator=g)
    assert_close(norms.project(z, p, math.inf, lower=lo, upper=hi),  # type: ignore[arg-type]
                 torch.minimum(torch.maximum(z, lo), hi))


@pytest.mark.parametrize("p", NORMS)
def test_project_zero_eps_gives_zero(p: str) -> None:
    z = torch.tensor([[1.0, -2.0, 3.0], [0.0, 0.5, 0.0]])
    assert_close(norms.project(z, p, 0.0), torch.zeros_like(z))  # type: ignore[arg-type]


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box", [False, True])
def test_project_keeps_dtype_and_does_not_mutate(p: str, dtype: torch.dtype, box: bool) -> None:
    g = torch.Generator().manual_seed(4)
    z = torch.randn(3, 5, generator=g, dtype=dtype) * 4
    lo, hi = -torch.rand(3, 5, generator=g, dtype=dtype), torch.rand(3, 5, generator=g,
                                                                       dtype=dtype)
    z0, lo0, hi0 = z.clone(), lo.clone(), hi.clone()
    kw = {"lower": lo, "upper": hi} if box else {}
    out = norms.project(z, p, 1.5 if p != "l0" else 2, **kw)  # type: ignore[arg-type]
    assert out.dtype == dtype and out.device == z.device and out.shape == z.shape
    assert torch.equal(z, z0) and torch.equal(lo, lo0) and torch.equal(hi, hi0)
    assert out.data_ptr() != z.data_ptr()


def test_project_needs_both_bounds_and_valid_eps() -> None:
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="both lower and upper"):
        norms.project(z, "l2", 1.0, lower=torch.zeros(3))
    with pytest.raises(ValueError, match="eps"):
        norms.project(z, "l2", -1.0)
    with pytest.raises(ValueError, match="eps"):
        norms.project(z, "l2", math.nan)
    with pytest.raises(ValueError, match="eps must be a scalar or have shape"):
        norms.project(z, "l2", torch.ones(3))


@pytest.mark.parametrize("p", NORMS)
def test_project_per_sample_eps_matches_rowwise(p: str) -> None:
    g = torch.Generator().manual_seed(5)
    z = torch.randn(4, 6, generator=g, dtype=torch.float64) * 3
    lo, hi = -torch.rand(4, 6, generator=g, dtype=torch.float64), torch.rand(
        4, 6, generator=g, dtype=torch.float64) * 2
    eps = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    for kw in ({}, {"lower": lo, "upper": hi}):
        out = norms.project(z, p, eps, **kw)  # type: ignore[arg-type]
        for i in range(4):
            one_kw = {k: v[i:i + 1] for k, v in kw.items()}
            assert_close(out[i:i + 1], norms.project(z[i:i + 1], p,  # type: ignore[arg-type]
                                                     float(eps[i]), **one_kw))
    # different radii really give different answers (the tensor is not collapsed to one value)
    assert norms.norm(norms.project(z, p, eps), p)[0] == 0  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- properties
@PROPERTY
@given(problems(box=False), st.sampled_from(CONVEX))
def test_property_convex_projection_matches_reference_no_box(prob, p: str) -> None:
    z, eps, _, _ = prob
    out = norms.project(z, p, eps)  # type: ignore[arg-type]
    expected = np.stack([ref_project_one(z[i].numpy(), p, e, None, None)
                         for i, e in enumerate(_eps_list(eps, len(z)))])
    assert_close(out, torch.from_numpy(expected), atol=1e-7, rtol=1e-7)


@PROPERTY
@given(problems(box=True), st.sampled_from(CONVEX))
def test_property_convex_projection_matches_reference_with_box(prob, p: str) -> None:
    z, eps, lo, hi = prob
    out = norms.project(z, p, eps, lower=lo, upper=hi)  # type: ignore[arg-type]
    expected = np.stack([ref_project_one(z[i].numpy(), p, e, lo[i].numpy(), hi[i].numpy())
                         for i, e in enumerate(_eps_list(eps, len(z)))])
    assert_close(out, torch.from_numpy(expected), atol=1e-7, rtol=1e-7)


@PROPERTY
@given(st.booleans().flatmap(lambda b: st.tuples(problems(box=b, per_sample_eps=True),
                                                 st.sampled_from(NORMS))))
def test_property_feasible_and_idempotent(case) -> None:
    (z, eps, lo, hi), p = case
    if p == "l0":
        eps = torch.floor(eps * 2)
    kw = _box_kw(lo, hi)
    out = norms.project(z, p, eps, **kw)
    assert bool((norms.norm(out, p) <= eps * (1 + REL)).all())
    assert _in_box(out, lo, hi)
    assert_close(norms.project(out, p, eps, **kw), out, atol=1e-9, rtol=1e-9)


@PROPERTY
@given(st.booleans().flatmap(lambda b: problems(box=b)), st.sampled_from(CONVEX),
       st.integers(0, 2**31 - 1))
def test_property_projection_is_optimal(prob, p: str, seed: int) -> None:
    """Variational inequality and distance comparison against sampled feasible points."""
    z, eps, lo, hi = prob
    out = norms.project(z, p, eps, **_box_kw(lo, hi))  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(seed)
    n_q = 64
    zz = z.repeat_interleave(n_q, 0)
    q = norms.sample_ball(zz, p, eps, generator=g)  # type: ignore[arg-type]
    q = q * torch.rand(len(q), 1, generator=g, dtype=q.dtype) ** 4  # also near the centre
    if lo is not None:  # clipping towards 0 keeps a point in any Lp ball
        q = torch.minimum(torch.maximum(q, lo.repeat_interleave(n_q, 0)),
                          hi.repeat_interleave(n_q, 0))
    q = torch.cat([q, 0.9 * out.repeat_interleave(n_q, 0) + 0.1 * q])  # points next to out
    zz, pp = zz.repeat(2, 1), out.repeat_interleave(n_q, 0).repeat(2, 1)
    inner = ((zz - pp) * (q - pp)).sum(1)
    assert bool((inner <= 1e-7 * (1 + zz.abs().sum(1))).all()), inner.max()
    assert bool(((zz - pp).norm(dim=1) <= (zz - q).norm(dim=1) + 1e-9).all())


@PROPERTY
@given(st.booleans().flatmap(lambda b: problems(box=b, max_d=5)), st.integers(0, 5))
def test_property_l0_matches_brute_force(prob, k: int) -> None:
    z, _, lo, hi = prob
    out = norms.project(z, "l0", k, **_box_kw(lo, hi))
    assert bool((norms.norm(out, "l0") <= k).all())
    assert _in_box(out, lo, hi)
    for i in range(len(z)):
        best = ref_l0_distance(z[i].numpy(), k, None if lo is None else lo[i].numpy(),
                               None if hi is None else hi[i].numpy())
        assert float(((out[i] - z[i]) ** 2).sum()) == pytest.approx(best, rel=1e-9, abs=1e-12)


@PROPERTY
@given(st.booleans().flatmap(lambda b: problems(box=b)), st.sampled_from(NORMS))
def test_property_float32_feasible(prob, p: str) -> None:
    z, eps, lo, hi = prob
    z = z.float()
    kw = {} if lo is None else {"lower": lo.float(), "upper": hi.float()}
    out = norms.project(z, p, eps, **kw)  # type: ignore[arg-type]
    assert out.dtype == torch.float32
    limit = math.floor(eps) if p == "l0" else eps * (1 + REL)
    assert bool((norms.norm(out, p) <= limit).all())  # type: ignore[arg-type]
    assert _in_box(out, kw.get("lower"), kw.get("upper"))


# ---------------------------------------------------------------------------- steepest ascent
def test_steepest_ascent_known_values() -> None:
    g = torch.tensor([[3.0, -4.0, 0.0]])
    assert_close(norms.steepest_ascent(g, "linf"), torch.tensor([[1.0, -1.0, 0.0]]))
    assert_close(norms.steepest_ascent(g, "l2"), torch.tensor([[0.6, -0.8, 0.0]]))
    assert_close(norms.steepest_ascent(g, "l1"), torch.tensor([[0.0, -1.0, 0.0]]))
    assert_close(norms.steepest_ascent(g, "l1", k=2), torch.tensor([[0.5, -0.5, 0.0]]))


@pytest.mark.parametrize("p", CONVEX)
def test_steepest_ascent_attains_dual_norm(p: str) -> None:
    g = torch.Generator().manual_seed(6)
    grad = torch.randn(6, 3, 5, 5, generator=g, dtype=torch.float64)
    d = norms.steepest_ascent(grad, p)  # type: ignore[arg-type]
    assert d.shape == grad.shape and d.dtype == grad.dtype
    assert_close(norms.norm(d, p), torch.ones(6, dtype=torch.float64))  # type: ignore[arg-type]
    inner = (grad * d).flatten(1).sum(1)
    assert_close(inner, norms.norm(grad, norms.dual(p)))  # type: ignore[arg-type]
    # no other unit-norm direction does better (random directions on the unit sphere of p)
    other = norms.sample_ball(grad.repeat(50, 1, 1, 1), p, 1.0,  # type: ignore[arg-type]
                              generator=g)
    assert bool(((grad.repeat(50, 1, 1, 1) * other).flatten(1).sum(1)
                 <= inner.repeat(50) + 1e-9).all())


@pytest.mark.parametrize("k", [1, 3, 10])
def test_steepest_ascent_l1_topk(k: int) -> None:
    grad = torch.tensor([[0.1, -5.0, 2.0, 0.3, -4.0, 1.0, 0.2, 3.0, -0.5, 0.7]])
    d = norms.steepest_ascent(grad, "l1", k=k)
    nonzero = d[0] != 0
    assert int(nonzero.sum()) == k
    top = grad.abs().topk(k).indices[0]
    assert bool(nonzero[top].all())
    assert_close(norms.norm(d, "l1"), torch.ones(1))
    assert bool((torch.sign(d[0, top]) == torch.sign(grad[0, top])).all())
    with pytest.raises(ValueError, match="k must be"):
        norms.steepest_ascent(grad, "l1", k=11)


@pytest.mark.parametrize("p", CONVEX)
def test_steepest_ascent_zero_gradient_gives_zero(p: str) -> None:
    grad = torch.zeros(2, 4)
    grad[1, 2] = -2.0
    d = norms.steepest_ascent(grad, p)  # type: ignore[arg-type]
    assert torch.equal(d[0], torch.zeros(4))
    assert torch.equal(d[1], torch.tensor([0.0, 0.0, -1.0, 0.0]))


def test_steepest_ascent_l0_raises() -> None:
    with pytest.raises(ValueError, match="L0"):
        norms.steepest_ascent(torch.ones(2, 3), "l0")


# ---------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("p", NORMS)
def test_sample_ball_inside_and_shape(p: str) -> None:
    x = torch.zeros(200, 3, 4, 4, dtype=torch.float64)
    eps = torch.linspace(0.5, 4, 200, dtype=torch.float64)
    if p == "l0":
        eps = torch.floor(eps)
    u = norms.sample_ball(x, p, eps, generator=torch.Generator().manual_seed(7))  # type: ignore[arg-type]
    assert u.shape == x.shape and u.dtype == x.dtype
    assert bool((norms.norm(u, p) <= eps * (1 + REL)).all())  # type: ignore[arg-type]
    if p == "l0":  # exactly floor(eps) coordinates, with values in [-1, 1]
        assert_close(norms.norm(u, "l0"), eps)
        assert bool((u.abs() <= 1).all())


@pytest.mark.parametrize("p", NORMS)
def test_sample_ball_reproducible(p: str) -> None:
    x = torch.zeros(8, 10)
    a = norms.sample_ball(x, p, 3.0, generator=torch.Generator().manual_seed(11))  # type: ignore[arg-type]
    b = norms.sample_ball(x, p, 3.0, generator=torch.Generator().manual_seed(11))  # type: ignore[arg-type]
    c = norms.sample_ball(x, p, 3.0, generator=torch.Generator().manual_seed(12))  # type: ignore[arg-type]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# Volume-uniformity. For n independent samples the fraction below eps/2 is binomial with
# standard error sqrt(p (1 - p) / n); with n = 200_000 and p <= 1/4 that is <= 9.7e-4, so a
# tolerance of 5e-3 (>= 5 standard errors, false alarm rate < 1e-6) cannot flake, while the
# classic bugs are far outside it: a uniform radius in 2-D gives 1/2 instead of 1/4, points on
# the sphere give 0, a missing sign gives a quarter of the ball only (caught by the orthant check).
N_UNIFORM = 200_000


@pytest.mark.parametrize(("p", "d"), [("l2", 2), ("l2", 5), ("l1", 2), ("l1", 3),
                                      ("linf", 2), ("linf", 3)])
def test_sample_ball_volume_uniform(p: str, d: int) -> None:
    eps = 1.7
    x = torch.zeros(N_UNIFORM, d, dtype=torch.float64)
    u = norms.sample_ball(x, p, eps, generator=torch.Generator().manual_seed(13))  # type: ignore[arg-type]
    # the ball of radius eps/2 has (1/2)^d of the volume of the ball of radius eps, in every norm
    frac = float((norms.norm(u, p) <= eps / 2).double().mean())  # type: ignore[arg-type]
    assert frac == pytest.approx(0.5**d, abs=5e-3)
    # symmetric: each coordinate is positive half of the time (sd 1.1e-3 -> 5e-3 is > 4 sd)
    assert_close((u > 0).double().mean(0), torch.full((d,), 0.5, dtype=torch.float64),
                 atol=5e-3, rtol=0)
    # also check a second shell, P(||u|| <= 0.9 eps) = 0.9^d
    frac9 = float((norms.norm(u, p) <= 0.9 * eps).double().mean())  # type: ignore[arg-type]
    assert frac9 == pytest.approx(0.9**d, abs=5e-3)


@pytest.mark.parametrize("p", NORMS)
def test_sample_ball_infinite_eps_raises(p: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        norms.sample_ball(torch.zeros(2, 3), p, math.inf)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        norms.sample_ball(torch.zeros(2, 3), p,  # type: ignore[arg-type]
                          torch.tensor([1.0, math.inf]))


def test_finite() -> None:
    assert norms.finite(1.0) and not norms.finite(math.inf)
    assert norms.finite(torch.tensor([1.0, 2.0]))
    assert not norms.finite(torch.tensor([1.0, math.inf]))

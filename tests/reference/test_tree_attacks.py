"""Tree attacks against known answers: a hand-built ensemble whose minimal evasions are derived
by hand, and small trained ensembles against an exhaustive search over their cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from advlab import Domain, ThreatModel
from advlab.attacks import hopskipjump, square
from advlab.evaluation.score import score
from advlab.trees import TreeModel, train_trees
from advlab.trees.greedy import greedy_evasion
from advlab.trees.milp import TOL, kantchelian_milp, lp_bound, solve
from advlab.trees.verify import certified_radius, certify
from tree_fixtures import blobs, needs, toy_ensemble

X = torch.tensor([[0.2, 0.2]])
Y = torch.tensor([0])


def toy_model() -> TreeModel:
    return TreeModel("xgboost", None, toy_ensemble())


@pytest.mark.parametrize(("norm", "expected", "point"),
                         [("linf", 0.4, [0.5, 0.6]), ("l1", 0.5, [0.7, 0.2])])
def test_milp_finds_the_hand_derived_minimum(norm: str, expected: float, point: list[float]
                                             ) -> None:
    threat = ThreatModel(norm, math.inf, Domain(0.0, 1.0, n_features=2))
    result = solve(toy_model(), X, Y, threat)
    assert bool(result.optimal.all())
    assert float(result.norm[0]) == pytest.approx(expected, abs=1e-6)
    torch.testing.assert_close(result.x_adv, torch.tensor([point]), atol=1e-6, rtol=0)
    assert int(toy_model()(result.x_adv).argmax(1)) == 1


def test_milp_respects_immutable_and_integer_features() -> None:
    # x1 immutable: only x0 >= 0.7 is left, at L∞ 0.5
    immutable = Domain(0.0, 1.0, n_features=2, immutable=[1])
    r = solve(toy_model(), X, Y, ThreatModel("linf", math.inf, immutable))
    assert float(r.norm[0]) == pytest.approx(0.5, abs=1e-6)
    assert float(r.x_adv[0, 1]) == pytest.approx(0.2)
    # x0 on the grid 0, 0.25, ...: 0.7 is off it, so the L1 optimum moves x0 to 0.75
    grid = Domain(0.0, 1.0, kinds={0: "integer"}, resolution=0.25, n_features=2)
    x = torch.tensor([[0.25, 0.2]])
    r = solve(toy_model(), x, Y, ThreatModel("l1", math.inf, grid))
    assert float(r.norm[0]) == pytest.approx(0.5, abs=1e-6)
    assert float(r.x_adv[0, 0]) == pytest.approx(0.75)
    assert bool(grid.contains(r.x_adv, x).all())


def test_milp_with_finite_eps_is_an_exact_verifier() -> None:
    domain = Domain(0.0, 1.0, n_features=2)
    below = solve(toy_model(), X, Y, ThreatModel("linf", 0.39, domain))
    assert math.isinf(float(below.norm[0])) and bool(below.optimal[0])
    torch.testing.assert_close(kantchelian_milp(toy_model(), X, Y,
                                                ThreatModel("linf", 0.39, domain)), X)
    assert float(solve(toy_model(), X, Y, ThreatModel("linf", 0.41, domain)).norm[0]) == \
        pytest.approx(0.4, abs=1e-6)


def test_bounds_never_exceed_the_minimum_and_the_full_merge_is_exact() -> None:
    domain = Domain(0.0, 1.0, n_features=2)
    lp = float(lp_bound(toy_model(), X, Y, ThreatModel("linf", math.inf, domain))[0])
    assert 0.0 <= lp <= 0.4
    naive = float(certified_radius(toy_model(), X, Y, domain, group=1, steps=20)[0])
    exact = float(certified_radius(toy_model(), X, Y, domain, group=3, steps=20)[0])
    assert naive <= exact + 1e-6
    assert exact == pytest.approx(0.4, abs=1e-5)
    assert bool(certify(toy_model(), X, Y, ThreatModel("linf", 0.39, domain), group=3)[0])
    assert not bool(certify(toy_model(), X, Y, ThreatModel("linf", 0.41, domain), group=3)[0])


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_greedy_and_black_box_attacks_never_beat_the_milp(norm: str) -> None:
    domain = Domain(0.0, 1.0, n_features=2)
    threat = ThreatModel(norm, math.inf, domain)
    greedy = greedy_evasion(toy_model(), X, Y, threat)
    s = score(toy_model(), X, Y, greedy, threat)
    assert bool(s.success.all())
    assert float(getattr(s, norm)[0]) >= (0.4 if norm == "linf" else 0.5) - 1e-6
    if norm == "linf":
        gen = torch.Generator().manual_seed(0)
        for attack in (hopskipjump(toy_model(), X.repeat(4, 1), Y.repeat(4), threat,
                                   max_queries=400, generator=gen),):
            s = score(toy_model(), X.repeat(4, 1), Y.repeat(4), attack, threat)
            assert bool((s.linf[s.success] >= 0.4 - 1e-6).all())
        x_sq = square(toy_model(), X.repeat(4, 1), Y.repeat(4), ThreatModel("linf", 0.45, domain),
                      max_queries=200, generator=gen)
        s = score(toy_model(), X.repeat(4, 1), Y.repeat(4), x_sq, ThreatModel("linf", 0.45,
                                                                                domain))
        assert bool((s.linf[s.success] >= 0.4 - 1e-6).all())


def exhaustive_linf(model: TreeModel, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The exact minimal L∞ evasion by enumeration: the nearest point of a cell to x0 has, per
    feature, x0 itself, a threshold or the float32 just below one (all within [0, 1])."""
    e = model.ensemble
    out = []
    for x0, label in zip(x.numpy(), y.numpy(), strict=True):
        axes = []
        for f in range(e.n_features):
            t = e.thresholds().get(f, np.zeros(0, np.float32))
            c = np.concatenate([t, np.nextafter(t, np.float32(-np.inf)), [0, 1, x0[f]]])
            axes.append(np.unique(np.clip(c, 0, 1).astype(np.float32)))
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, e.n_features)
        fooled = e.scores(grid).argmax(1) != label
        out.append(np.abs(grid[fooled] - x0).max(1).min() if fooled.any() else np.inf)
    return np.array(out)


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "random-forest"])
def test_milp_equals_the_exhaustive_minimum_on_20_trees_of_depth_4(kind: str) -> None:
    needs("xgboost", "lightgbm", "skops")
    data = blobs(d=2)
    model, _ = train_trees(data, kind, n_estimators=20, max_depth=4)  # type: ignore[arg-type]
    x, y = data.x_test[:12], data.y_test[:12]
    keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    threat = ThreatModel("linf", math.inf, data.domain)
    result = solve(model, x, y, threat)
    truth = exhaustive_linf(model, x, y)
    np.testing.assert_allclose(result.norm.numpy(), truth, atol=2 * TOL)
    assert bool(score(model, x, y, result.x_adv, threat).success.all())
    greedy = score(model, x, y, greedy_evasion(model, x, y, threat), threat)
    assert bool(greedy.success.all())
    assert bool((greedy.linf >= result.norm.float() - 2 * TOL).all())
    chen = certified_radius(model, x, y, data.domain, group=2, steps=16)
    assert bool((chen <= torch.from_numpy(truth) + 1e-6).all())

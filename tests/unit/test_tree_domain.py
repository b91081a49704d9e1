"""Under a security Domain every adversarial record of every tree attack is valid: one-hot
groups one-hot, integers on their grid, binary flags binary, immutable features unchanged and
add-only features never decreased."""

from __future__ import annotations

import math

import pytest
import torch

from advlab import Domain, ThreatModel
from advlab.attacks import hopskipjump, square
from advlab.data import load
from advlab.data.base import Dataset
from advlab.evaluation.score import score
from advlab.trees import train_trees
from advlab.trees.greedy import greedy_evasion
from advlab.trees.milp import kantchelian_milp
from tree_fixtures import needs

needs("xgboost", "lightgbm", "skops")


def kdd_shaped(n: int = 900, seed: int = 0) -> Dataset:
    """14 features like an NSL-KDD record: 3 continuous rates, 2 counts on a 0.25 grid, a flag,
    a mutable one-hot service (3), an immutable one-hot protocol (3), 2 add-only flags."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 14)
    x[:, :3] = torch.rand(n, 3, generator=g)
    x[:, 3:5] = torch.randint(0, 5, (n, 2), generator=g) * 0.25
    x[:, 5] = torch.randint(0, 2, (n,), generator=g).float()
    x[torch.arange(n), 6 + torch.randint(0, 3, (n,), generator=g)] = 1.0
    x[torch.arange(n), 9 + torch.randint(0, 3, (n,), generator=g)] = 1.0
    x[:, 12:] = torch.randint(0, 2, (n, 2), generator=g).float()
    score_ = x[:, 0] + x[:, 3] + 0.5 * x[:, 5] + x[:, 7] - x[:, 12] + 0.3 * x[:, 10]
    y = (score_ > score_.median()).long()
    kinds = {3: "integer", 4: "integer", 5: "binary", 12: "binary", 13: "binary"}
    domain = Domain(0.0, 1.0, kinds=kinds, resolution=[0.25 if i in (3, 4) else 1.0
                                                       for i in range(14)],
                    one_hot_groups=[[6, 7, 8], [9, 10, 11]], immutable=[9, 10, 11],
                    increase_only=[12, 13], n_features=14)
    assert bool(domain.contains(x).all())
    return Dataset("kdd-shaped", x[:600], y[:600], x[600:], y[600:], domain,
                   tuple(f"f{i}" for i in range(14)), ("normal", "attack"))


def assert_valid(data: Dataset, x: torch.Tensor, x_adv: torch.Tensor,
                 threat: ThreatModel) -> None:
    assert bool(data.domain.contains(x_adv, x).all())
    assert bool(threat.contains(x_adv, x).all())
    groups = data.domain.one_hot_groups
    for g in groups:
        assert torch.equal(x_adv[:, list(g)].sum(1), torch.ones(len(x)))
    torch.testing.assert_close(x_adv[:, 9:12], x[:, 9:12], atol=0, rtol=0)
    assert bool((x_adv[:, 12:] >= x[:, 12:]).all())


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "random-forest"])
def test_every_tree_attack_returns_valid_records(kind: str) -> None:
    data = kdd_shaped()
    model, _ = train_trees(data, kind, n_estimators=10, max_depth=3)  # type: ignore[arg-type]
    x, y = data.x_test[:8], data.y_test[:8]
    gen = torch.Generator().manual_seed(0)
    for norm in ("linf", "l1"):
        threat = ThreatModel(norm, math.inf, data.domain)
        x_milp = kantchelian_milp(model, x, y, threat)
        assert_valid(data, x, x_milp, threat)
        s = score(model, x, y, x_milp, threat)
        assert bool(s.success[s.clean_correct].all())  # the trees can always be evaded here
        moved = (x_milp != x)[s.clean_correct][:, 3:9]
        assert bool(moved.any())  # discrete features and the mutable group do move
        assert_valid(data, x, greedy_evasion(model, x, y, threat), threat)
    hsj = ThreatModel("linf", math.inf, data.domain)
    assert_valid(data, x, hopskipjump(model, x, y, hsj, max_queries=150, generator=gen), hsj)
    sq = ThreatModel("linf", 0.3, data.domain)
    assert_valid(data, x, square(model, x, y, sq, max_queries=50, generator=gen), sq)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize(("name", "path"), [("nsl-kdd", "nsl-kdd"),
                                            ("tuandromd", "tuandromd")])
def test_real_domains_stay_valid(name: str, path: str, data_root) -> None:
    data = load(name, data_root / path)
    model, record = train_trees(data, "xgboost", n_estimators=20, max_depth=4)
    assert record["test_accuracy"] > 0.75
    x, y = data.x_test[:6], data.y_test[:6]
    for norm in ("linf", "l1"):
        threat = ThreatModel(norm, math.inf, data.domain)
        for x_adv in (kantchelian_milp(model, x, y, threat, time_limit=60),
                      greedy_evasion(model, x, y, threat)):
            assert bool(data.domain.contains(x_adv, x).all())
            assert bool(threat.contains(x_adv, x).all())
            if name == "tuandromd":  # add-only permissions: features only ever switch on
                assert bool((x_adv >= x).all())

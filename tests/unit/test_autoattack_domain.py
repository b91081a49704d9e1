"""APGD, FAB and AutoAttack on an NSL-KDD-shaped domain: every output is a valid record.

The synthetic domain has NSL-KDD's encoded layout (122 features): one-hot protocol (3, and
immutable), service (70) and flag (11) groups, integer counts (min-max scaled, grid 1/255),
binary flags, rates in [0, 1], increase-only counters and a decrease-only one. The real
NSL-KDD domain is checked too where the data set is present (slow).
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel
from advlab.attacks import apgd, apgd_t, autoattack, fab
from advlab.evaluation import score
from advlab.models import mlp

ATTACKS = {
    "apgd-ce": partial(apgd, loss="ce", steps=20),
    "apgd-dlr": partial(apgd, loss="dlr", steps=20),
    "apgd-t": partial(apgd_t, steps=20, n_targets=2),
    "fab": partial(fab, steps=30),
    "fab-t": partial(fab, steps=30, n_targets=2),
    "autoattack": partial(autoattack, steps=20, n_targets=2, max_queries=50),
}
EPS = {"linf": 0.3, "l2": 1.5, "l1": 4.0}


def nsl_shaped() -> Domain:
    groups = [list(range(0, 3)), list(range(3, 73)), list(range(73, 84))]
    kinds = ["binary"] * 84 + ["integer"] * 16 + ["binary"] * 6 + ["continuous"] * 16
    res = [1.0] * 84 + [1 / 255] * 16 + [1.0] * 22
    return Domain(lower=[0.0] * 122, upper=[1.0] * 122, kinds=kinds, resolution=res,
                  one_hot_groups=groups, immutable=groups[0], increase_only=list(range(84, 92)),
                  decrease_only=[121])


def valid_records(domain: Domain, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return domain.project(torch.rand(n, 122, generator=g))


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = mlp(122, 3, hidden=(32,)).eval()
    with torch.no_grad():
        model[1].weight.mul_(6)
    return model


def _check(model: nn.Module, domain: Domain, x: torch.Tensor, norm: str) -> dict[str, int]:
    with torch.no_grad():
        y = model(x).argmax(1)
    broken = {}
    for name, attack in ATTACKS.items():
        minimal = name.startswith("fab")
        threat = ThreatModel(norm, math.inf if minimal else EPS[norm], domain)  # type: ignore[arg-type]
        x_adv = attack(model, x, y, threat, generator=torch.Generator().manual_seed(0))
        bad = domain.violations(x_adv, x)
        assert not bool(bad.any()), f"{name} {norm}: {int(bad.any(1).sum())} invalid records"
        result = score(model, x, y, x_adv, threat)
        if not minimal:
            assert bool(result.in_threat.all()), name
        else:  # x itself where no success: every changed record is misclassified
            moved = (x_adv != x).any(1)
            assert bool((model(x_adv).argmax(1)[moved] != y[moved]).all()), name
        broken[name] = int(result.success.sum())
    return broken


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_new_attacks_respect_an_nsl_kdd_shaped_domain(norm) -> None:
    domain = nsl_shaped()
    x = valid_records(domain, 24, seed=1)
    broken = _check(_model(), domain, x, norm)
    assert sum(broken.values()) > 0, "no attack changed a prediction: the test is vacuous"
    assert broken["autoattack"] >= broken["apgd-ce"]


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_new_attacks_respect_the_real_nsl_kdd_domain(norm, data_root) -> None:
    from advlab.data import nsl_kdd

    folder = data_root / "nsl-kdd"
    if not (folder / "KDDTest+.txt").exists():
        pytest.skip(f"NSL-KDD not found in {folder}")
    data = nsl_kdd(folder)
    torch.manual_seed(0)
    model = mlp(data.x_train.shape[1], data.num_classes, hidden=(32,)).eval()
    broken = _check(model, data.domain, data.x_test[:32], norm)
    assert broken["autoattack"] >= broken["apgd-ce"]

"""Acceptance checks of the black-box attacks on the digits CNN (docs/blackbox.md), slow.

The same protocol as ``benchmarks/blackbox_digits.py``: the digits small_cnn (28×28 upsampled
digits, 5 epochs, lr 2e-3, batch 64, no validation split) is the target, seen only through an
:class:`~advlab.attacks.oracle.Oracle`.
"""

from __future__ import annotations

import math

import pytest
import torch

from advlab import ThreatModel
from advlab.attacks import carlini_wagner_l2, hopskipjump, square
from advlab.attacks.oracle import Oracle
from advlab.attacks.substitute import seed_set, train_substitute
from advlab.attacks.transfer import transfer
from advlab.data import load
from advlab.models import new_model, train_classifier
from advlab.scoring import score

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def subject():
    ds = load("digits", upsample=True)
    model = train_classifier(ds, "small_cnn", epochs=5, lr=2e-3, batch_size=64, val_fraction=0,
                             progress=False).model.eval()
    return ds, model


def _correct(ds, model, n: int):
    with torch.no_grad():
        ok = model(ds.x_test).argmax(1) == ds.y_test
    return ds.x_test[ok][:n], ds.y_test[ok][:n]


def test_substitute_agrees_with_the_oracle_and_pgd_transfers(subject) -> None:
    ds, model = subject
    idx = seed_set(ds.y_train, 10, generator=torch.Generator().manual_seed(0))
    sub = new_model("small_cnn", {"in_shape": list(ds.input_shape), "classes": 10}, seed=1)
    with torch.no_grad():
        labels = model(ds.x_test).argmax(1)
    oracle = Oracle(model)
    result = train_substitute(oracle, ds.x_train[idx], sub, rounds=6, lam=0.1, tau=3, epochs=10,
                              domain=ds.domain, holdout=(ds.x_test, labels), seed=0)
    assert result.queries == oracle.queries == 100 * 2 ** 6
    assert result.agreement is not None and result.agreement >= 0.8
    tr = transfer(sub, model, ds.x_test, ds.y_test, ThreatModel("linf", 0.3, ds.domain),
                  attack="pgd", params={"steps": 40}, generator=torch.Generator().manual_seed(0))
    assert tr.success_rate >= 0.5


def test_square_linf_succeeds_with_few_queries(subject) -> None:
    ds, model = subject
    x, y = _correct(ds, model, 100)
    threat = ThreatModel("linf", 0.3, ds.domain)
    oracle = Oracle(model, output="probabilities", num_samples=len(x))
    x_adv = square(oracle, x, y, threat, max_queries=10_000,
                   generator=torch.Generator().manual_seed(0))
    s = score(model, x, y, x_adv, threat)
    assert float(s.success.float().mean()) >= 0.9
    assert oracle.per_sample is not None
    assert float(oracle.per_sample[s.success].double().median()) <= 1000


def test_hopskipjump_l2_close_to_carlini_wagner(subject) -> None:
    ds, model = subject
    x, y = _correct(ds, model, 100)
    threat = ThreatModel("l2", math.inf, ds.domain)
    x_hsj = hopskipjump(model, x, y, threat, max_queries=5000,
                        generator=torch.Generator().manual_seed(0))
    x_cw = carlini_wagner_l2(model, x, y, threat)
    s_hsj, s_cw = score(model, x, y, x_hsj, threat), score(model, x, y, x_cw, threat)
    assert bool(s_hsj.success.all())
    ratio = float(s_hsj.l2.median()) / float(s_cw.l2[s_cw.success].median())
    assert ratio <= 1.5, ratio

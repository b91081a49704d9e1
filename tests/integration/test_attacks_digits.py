"""White-box attacks on the foundation's digits CNN (digits upsampled to 28×28, as in `make
demo`): the acceptance figures of the white-box issue, with the papers' settings."""

from __future__ import annotations

import math

import pytest
import torch

from advlab import ThreatModel
from advlab.attacks import carlini_wagner_l2, deepfool, jsma, pgd, targets
from advlab.data import load
from advlab.models import train_classifier
from advlab.scoring import score


@pytest.fixture(scope="module")
def digits_cnn():
    data = load("digits", upsample=True)
    trained = train_classifier(data, "small_cnn", epochs=15, lr=2e-3, batch_size=64,
                               val_fraction=0.0, progress=False)
    assert trained.metrics["test_accuracy"] >= 0.95
    return trained.model, data


def test_pgd40_linf_03_drives_accuracy_below_2_percent(digits_cnn) -> None:
    model, data = digits_cnn
    threat = ThreatModel("linf", 0.3, data.domain)
    x, y = data.x_test, data.y_test
    x_adv = pgd(model, x, y, threat, steps=40, generator=torch.Generator().manual_seed(0))
    result = score(model, x, y, x_adv, threat)
    assert result.in_threat.all()
    assert result.summary()["robust_accuracy"] < 0.02


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_deepfool_succeeds_on_99_percent(digits_cnn, norm) -> None:
    model, data = digits_cnn
    threat = ThreatModel(norm, math.inf, data.domain)
    x, y = data.x_test, data.y_test
    result = score(model, x, y, deepfool(model, x, y, threat), threat)
    assert result.in_domain.all()
    assert result.success.float().mean() >= 0.99


def test_carlini_wagner_succeeds_on_99_percent(digits_cnn) -> None:
    model, data = digits_cnn
    threat = ThreatModel("l2", math.inf, data.domain)
    x, y = data.x_test[:100], data.y_test[:100]
    x_adv = carlini_wagner_l2(model, x, y, threat)
    result = score(model, x, y, x_adv, threat)
    assert result.in_domain.all()
    assert result.success.float().mean() >= 0.99
    # the minimal-norm attacks should agree to within a factor on the typical perturbation
    df = score(model, x, y, deepfool(model, x, y, threat), threat)
    assert result.l2[result.success].median() <= 1.1 * df.l2[df.success].median()


def test_targeted_jsma_gamma_02_succeeds_on_90_percent(digits_cnn) -> None:
    model, data = digits_cnn
    x, y = data.x_test, data.y_test
    target = targets.random(y, 10, generator=torch.Generator().manual_seed(0))
    threat = ThreatModel("l0", math.inf, data.domain)
    x_adv = jsma(model, x, y, threat, target=target, gamma=0.2)
    result = score(model, x, y, x_adv, threat, target=target)
    assert (result.l0 <= 0.2 * 784).all()
    assert result.success.float().mean() >= 0.90

"""The foundation's acceptance figures, on the real data (each trains in seconds)."""

from __future__ import annotations

import pytest

from advlab.data import load
from advlab.models import train_classifier


def test_digits_cnn_reaches_95_percent() -> None:
    trained = train_classifier(load("digits", upsample=True), "small_cnn", epochs=15, lr=2e-3,
                               batch_size=64, val_fraction=0.0, progress=False)
    assert trained.metrics["test_accuracy"] >= 0.95


def test_nsl_kdd_mlp_matches_published_baseline(data_root) -> None:
    """Tavallaee et al. (CISDA 2009) report 77.4% for an MLP on KDDTest+."""
    data = load("nsl-kdd", data_root / "nsl-kdd")
    assert data.x_train.shape == (25_192, 122) and data.x_test.shape == (22_544, 122)
    trained = train_classifier(data, "mlp", epochs=10, seed=0, progress=False)
    assert trained.metrics["test_accuracy"] >= 0.77


def test_tuandromd_mlp_reaches_95_percent(data_root) -> None:
    data = load("tuandromd", data_root / "tuandromd", seed=0)
    assert data.x_train.shape[1] == 241
    n = data.x_train.shape[0] + data.x_test.shape[0]
    assert data.x_test.shape[0] == pytest.approx(0.3 * n, abs=1)
    trained = train_classifier(data, "mlp", epochs=10, seed=0, progress=False)
    assert trained.metrics["test_accuracy"] >= 0.95

"""Run-time detectors: separation, calibration, the interface's contract and its errors.

A small MLP on the 8×8 digits against PGD L∞ (eps 0.15, 10 steps; 81 % of the test images
fooled). Measured when written, on 300 held-out clean and 300 adversarial images: ROC-AUC 0.956
(activations, logistic), 0.954 (logits, logistic), 0.990 (activations, MLP). The tests ask for
0.8, far above chance (0.5): they fail when the features or the scores' sign are wrong, not on
noise.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from advlab import ThreatModel
from advlab.attacks import pgd
from advlab.data import load
from advlab.defenses.detection import ActivationDetector, Detector, detection_metrics
from advlab.models import train_classifier

THREAT = ThreatModel("linf", 0.15)
ATTACK = functools.partial(pgd, steps=10)


@pytest.fixture(scope="module")
def setup() -> dict[str, torch.Tensor | nn.Module]:
    data = load("digits")
    model = train_classifier(data, "mlp", hidden=(64,), epochs=10, lr=3e-3, val_fraction=0,
                             progress=False).model
    gen = torch.Generator().manual_seed(0)
    x_fit, y_fit = data.x_train[:400], data.y_train[:400]
    x_test, y_test = data.x_test[150:], data.y_test[150:]
    return {"model": model, "x_fit": x_fit, "adv_fit": ATTACK(model, x_fit, y_fit, THREAT,
                                                              generator=gen),
            "calibration": data.x_test[:150], "x_test": x_test,
            "adv_test": ATTACK(model, x_test, y_test, THREAT, generator=gen)}


def fitted(setup, **kwargs) -> ActivationDetector:
    return ActivationDetector(setup["model"], **kwargs).fit(setup["x_fit"], setup["adv_fit"])


@pytest.mark.parametrize(("features", "classifier"), [("activations", "logistic"),
                                                      ("logits", "logistic"),
                                                      ("activations", "mlp")])
def test_detector_separates_clean_from_adversarial_on_held_out_data(setup, features,
                                                                    classifier) -> None:
    det = fitted(setup, features=features, classifier=classifier)
    det.calibrate(setup["calibration"], fpr=0.05)
    m = detection_metrics(det, setup["x_test"], setup["adv_test"])
    assert m["roc_auc"] >= 0.8, m
    assert m["detection_rate"] > 2 * m["false_positive_rate"], m
    assert m["target_fpr"] == 0.05 and m["threshold"] == det.threshold
    assert m["n_clean"] == len(setup["x_test"]) and m["n_adversarial"] == len(setup["adv_test"])


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.1, 0.5])
def test_calibrate_flags_at_most_fpr_of_the_calibration_set(setup, fpr) -> None:
    det = fitted(setup)
    calibration = setup["calibration"]
    threshold = det.calibrate(calibration, fpr=fpr)
    assert threshold == det.threshold and det.target_fpr == fpr
    flagged = int(det.predict(calibration).sum())
    # continuous scores have no ties: exactly the allowed number is flagged, not fewer
    assert flagged == math.floor(fpr * len(calibration))


def test_shapes_and_types(setup) -> None:
    det = fitted(setup)
    x = setup["x_test"][:7]
    scores, flags = det.score(x), det.predict(x)
    assert scores.shape == (7,) and scores.is_floating_point()
    assert flags.shape == (7,) and flags.dtype == torch.bool
    assert torch.equal(flags, scores > det.threshold)
    assert det.score(x[:0]).shape == (0,) and det.predict(x[:0]).shape == (0,)
    with pytest.raises(ValueError, match="no clean inputs"):
        det.calibrate(x[:0])
    assert det.threshold == 0.0 and det.target_fpr is None  # log-odds 0 until calibrated
    # batched extraction gives the same features as one pass
    small = ActivationDetector(setup["model"], batch_size=3)
    torch.testing.assert_close(small.features(x), det.features(x))


def test_default_layer_is_the_input_of_the_last_linear_layer(setup) -> None:
    model = setup["model"]
    x = setup["x_test"][:5]
    with torch.no_grad():
        hidden = model[:-1](x)  # Flatten, Linear, ReLU: what the head sees
    torch.testing.assert_close(ActivationDetector(model).features(x), hidden)
    by_name = ActivationDetector(model, layer="2").features(x)  # the ReLU's output, by name
    by_module = ActivationDetector(model, layer=model[2]).features(x)
    torch.testing.assert_close(by_name, hidden)
    torch.testing.assert_close(by_module, hidden)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_logit_features_are_sorted_logits_and_log_probabilities(setup) -> None:
    model, x = setup["model"], setup["x_test"][:4]
    feats = ActivationDetector(model, features="logits").features(x)
    with torch.no_grad():
        logits = model(x)
    assert feats.shape == (4, 20)
    torch.testing.assert_close(feats[:, :10], logits.sort(1, descending=True).values)
    torch.testing.assert_close(feats[:, 10:].exp().sum(1), torch.ones(4))
    for half in (feats[:, :10], feats[:, 10:]):
        assert (half[:, :-1] >= half[:, 1:]).all()


def test_model_mode_restored_and_no_grad_left(setup) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(32, 10))
    model.train()
    model[3].eval()  # a mixed state must come back as it was
    det = ActivationDetector(model).fit(setup["x_fit"][:100], setup["adv_fit"][:100])
    x = setup["x_test"][:20]
    assert torch.equal(det.score(x), det.score(x))  # dropout off while extracting
    det.calibrate(setup["calibration"])
    det.predict(x)
    assert [m.training for m in model.modules()] == [True, True, True, True, False, True]
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_errors(setup) -> None:
    model = setup["model"]
    det = ActivationDetector(model)
    with pytest.raises(RuntimeError, match="fit"):
        det.score(setup["x_test"])
    with pytest.raises(RuntimeError, match="fit"):
        det.predict(setup["x_test"])
    with pytest.raises(RuntimeError, match="threshold"):
        detection_metrics(det, setup["x_test"], setup["adv_test"])
    det.fit(setup["x_fit"], setup["adv_fit"])
    for fpr in (-0.1, 1.0, 1.5, math.nan, True, "0.05"):
        with pytest.raises(ValueError, match="fpr"):
            det.calibrate(setup["calibration"], fpr=fpr)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in shape"):
        det.fit(setup["x_fit"], setup["adv_fit"].flatten(1))
    with pytest.raises(ValueError, match="non-empty"):
        det.fit(setup["x_fit"][:0], setup["adv_fit"])
    with pytest.raises(ValueError, match="features"):
        ActivationDetector(model, features="gradients")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no layer named"):
        ActivationDetector(model, layer="head")
    with pytest.raises(ValueError, match="only applies"):
        ActivationDetector(model, layer="2", features="logits")
    with pytest.raises(ValueError, match="classifier"):
        ActivationDetector(model, classifier="svm")  # type: ignore[arg-type]
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(ValueError, match="layer="):
        ActivationDetector(conv_only).features(setup["x_test"][:2])


def test_seeded_fits_are_identical(setup) -> None:
    a = fitted(setup, classifier="mlp", random_state=3).score(setup["x_test"])
    b = fitted(setup, classifier="mlp", random_state=3).score(setup["x_test"])
    assert torch.equal(a, b)


class NormDetector(Detector):
    """The interface's smallest implementation: the input's distance from the clean mean."""

    def fit(self, clean: torch.Tensor, adversarial: torch.Tensor) -> NormDetector:
        self.center = clean.mean(0)
        return self

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center).flatten(1).norm(dim=1)


def test_any_detector_gets_calibrate_predict_and_metrics(setup) -> None:
    det = NormDetector().fit(setup["x_fit"], setup["adv_fit"])
    assert det.threshold is None
    det.calibrate(setup["calibration"], fpr=0.1)
    assert det.predict(setup["calibration"]).double().mean() <= 0.1
    m = detection_metrics(det, setup["x_test"], setup["adv_test"])
    assert 0 <= m["roc_auc"] <= 1 and m["target_fpr"] == 0.1

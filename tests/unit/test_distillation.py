"""Defensive distillation (advlab.defenses.distillation) and the Carlini–Wagner lesson, on the
8×8 digits: gradient attacks through the softmax fail, C&W on the logits does not, and the
gradients_nonzero sanity check says why."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import Tensor, nn

from advlab.attacks import carlini_wagner_l2, fgsm, jsma, targets
from advlab.data import load
from advlab.defenses.distillation import (
    AtTemperature,
    Distilled,
    distill,
    fit_soft_labels,
    soft_labels,
)
from advlab.evaluation.checks import model_checks
from advlab.models import build, fit, read_sidecar, train_classifier
from advlab.models import load as load_model
from advlab.scoring import score
from advlab.threat import ThreatModel

T, EPOCHS, LR, BATCH = 100.0, 15, 5e-3, 64  # the same recipe for both models


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def distilled(digits) -> Distilled:
    return distill(digits, "small_cnn", temperature=T, epochs=EPOCHS, lr=LR, batch_size=BATCH,
                   seed=0, progress=False)


@pytest.fixture(scope="module")
def standard(digits) -> nn.Module:
    return train_classifier(digits, "small_cnn", epochs=EPOCHS, lr=LR, batch_size=BATCH,
                            seed=0, val_fraction=0, progress=False).model


def _success(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, threat: ThreatModel,
             target: Tensor | None = None) -> float:
    """Attack success among the samples the model classifies correctly (advlab.score's rule)."""
    s = score(model, x, y, x_adv, threat, target)
    return float(s.success[s.clean_correct].float().mean())


def _top2_gap(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        top = model(x).topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def test_student_is_accurate(distilled, standard, digits) -> None:
    assert distilled.metrics["test_accuracy"] >= 0.9
    assert distilled.metrics["teacher_test_accuracy"] >= 0.9
    assert not distilled.model.training and not distilled.teacher.training
    assert distilled.model is not distilled.teacher
    assert distilled.settings["epochs_run"] == EPOCHS


def test_deployed_logits_are_large_and_the_softmax_saturates(distilled, standard,
                                                             digits) -> None:
    x = digits.x_test
    gap_d, gap_s = _top2_gap(distilled.model, x).median(), _top2_gap(standard, x).median()
    assert gap_d >= 20 * gap_s  # trained at T = 100, deployed at T = 1: logits ~T times larger
    with torch.no_grad():
        saturated_d = (distilled.model(x).softmax(1).amax(1) == 1.0).float().mean()
        saturated_s = (standard(x).softmax(1).amax(1) == 1.0).float().mean()
    assert saturated_d >= 0.5 and saturated_s <= 0.05


def test_fgsm_and_jsma_fail_on_the_distilled_model(distilled, standard, digits) -> None:
    x, y = digits.x_test[:100], digits.y_test[:100]
    linf = ThreatModel("linf", 0.2, digits.domain)
    s_std = _success(standard, x, y, fgsm(standard, x, y, linf), linf)
    s_dis = _success(distilled.model, x, y, fgsm(distilled.model, x, y, linf), linf)
    assert s_std >= 0.6 and s_dis <= min(0.2, s_std / 3)
    l0 = ThreatModel("l0", math.inf, digits.domain)
    target = targets.random(y, 10, generator=torch.Generator().manual_seed(0))
    j_std = _success(standard, x, y, jsma(standard, x, y, l0, target=target, gamma=0.2), l0,
                     target)
    j_dis = _success(distilled.model, x, y,
                     jsma(distilled.model, x, y, l0, target=target, gamma=0.2), l0, target)
    assert j_std >= 0.6 and j_dis <= min(0.2, j_std / 3)


def test_carlini_wagner_on_logits_still_succeeds(distilled, digits) -> None:
    x, y = digits.x_test[:40], digits.y_test[:40]
    l2 = ThreatModel("l2", math.inf, digits.domain)
    x_adv = carlini_wagner_l2(distilled.model, x, y, l2, binary_search_steps=5)
    assert _success(distilled.model, x, y, x_adv, l2) >= 0.9


def test_gradients_nonzero_check_flags_the_distilled_model(distilled, standard,
                                                           digits) -> None:
    x, y = digits.x_test[:64], digits.y_test[:64]
    dis = {c.name: c for c in model_checks(distilled.model, x, y)}
    std = {c.name: c for c in model_checks(standard, x, y)}
    assert not dis["gradients_nonzero"].passed and dis["gradients_nonzero"].severity == "error"
    assert "masking" in dis["gradients_nonzero"].meaning
    assert std["gradients_nonzero"].passed
    # the outputs are logits, not probabilities: only the gradient check sees the masking
    assert dis["logits_not_probabilities"].passed


def test_same_seed_same_models_other_seed_other_models(digits) -> None:
    def run(seed: int) -> Distilled:
        return distill(digits, "mlp", hidden=(32,), temperature=20.0, epochs=2, lr=1e-2,
                       seed=seed, val_fraction=0.2, progress=False)

    state = torch.get_rng_state()
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), state)  # no global seeding
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(value, b.model.state_dict()[key], rtol=0, atol=0)
        torch.testing.assert_close(a.teacher.state_dict()[key], b.teacher.state_dict()[key],
                                   rtol=0, atol=0)
    assert not torch.equal(a.model[1].weight, c.model[1].weight)
    assert len(a.student_history.val_loss) == 2 and a.student_history.best_epoch in (0, 1)


def test_teacher_at_temperature_one_is_train_classifier(digits) -> None:
    """The temperature only divides the logits inside the loss: at T = 1 the teacher is exactly
    the model train_classifier trains with the same seed and knobs."""
    d = distill(digits, "mlp", hidden=(32,), temperature=1.0, epochs=2, lr=1e-2, seed=3,
                progress=False)
    ref = train_classifier(digits, "mlp", hidden=(32,), epochs=2, lr=1e-2, batch_size=64,
                           seed=3, val_fraction=0, progress=False).model
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(d.teacher.state_dict()[key], value)


def test_soft_label_training_on_one_hot_targets_is_fit(digits) -> None:
    """Cross-entropy with one-hot soft targets is the hard-label cross-entropy: same steps."""
    x, y = digits.x_train[:256], digits.y_train[:256]
    one_hot = torch.nn.functional.one_hot(y, 10).float()
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(build("mlp", in_features=64, classes=10, hidden=[16]))
    fit(AtTemperature(nets[0], 7.0), (x, y), epochs=2, lr=1e-2, batch_size=32, seed=5,
        progress=False)
    fit_soft_labels(nets[1], x, one_hot, temperature=7.0, epochs=2, lr=1e-2, batch_size=32,
                    seed=5, progress=False)
    for key, value in nets[0].state_dict().items():
        torch.testing.assert_close(nets[1].state_dict()[key], value)


def test_soft_labels_are_the_softmax_at_temperature(distilled, digits) -> None:
    x = digits.x_train[:50]
    soft = soft_labels(distilled.teacher, x, T)
    with torch.no_grad():
        expected = (distilled.teacher(x) / T).softmax(1)
    torch.testing.assert_close(soft, expected)
    assert (soft.amax(1) < 1.0).all()  # at T = 100 the labels are soft, not one-hot
    # the student learnt the teacher's soft labels (trained on hard labels from the same
    # initialisation and shuffling, it would be the teacher itself)
    student = soft_labels(distilled.model, x, T)
    kl = (soft * (soft.log() - student.clamp_min(1e-30).log())).sum(1).mean()
    assert kl < 0.1
    assert not torch.equal(distilled.model[-1].weight, distilled.teacher[-1].weight)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_bad_temperature_is_a_clear_error(digits, temperature: float) -> None:
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        distill(digits, "mlp", temperature=temperature, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"got -1\.0"):
        AtTemperature(nn.Identity(), -1.0)


def test_record_and_save_for_the_model_card(distilled, digits, tmp_path) -> None:
    record = distilled.record()
    assert json.loads(json.dumps(record)) == record
    assert record["method"] == "distillation" and record["temperature"] == T
    assert record["deployed_temperature"] == 1.0 and record["seed"] == 0
    assert record["epochs"] == EPOCHS and record["teacher_epochs"] == EPOCHS
    folder = distilled.save(tmp_path / "model", dataset=digits, dataset_options={"upsample": False})
    model, sidecar = load_model(folder)
    assert read_sidecar(folder)["defense"] == record
    assert sidecar["dataset"]["options"] == {"upsample": False}
    x = digits.x_test[:8]
    with torch.no_grad():
        torch.testing.assert_close(model(x), distilled.model(x))

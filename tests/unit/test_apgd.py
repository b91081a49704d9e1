"""APGD: the paper's checkpoint schedule and step-size rule, the passes it costs, EOT."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel
from advlab.attacks import apgd, apgd_t, pgd
from advlab.attacks.apgd import _checkpoint, checkpoints
from advlab.evaluation import score
from advlab.models import QueryCounter, mlp


def test_checkpoints_follow_the_paper() -> None:
    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (Croce and Hein 2020, §3.2)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1000) == [220, 410, 570, 700, 800, 870, 930, 990]
    assert checkpoints(10) == [3, 5, 6, 7, 8, 9, 10]
    assert checkpoints(1) == [1]


def _state(ups: list[int], f_max: list[float], f_last: list[float], reduced: list[bool]):
    n = len(ups)
    x = torch.zeros(n, 2)
    return {"ups": torch.tensor(ups), "f_max": torch.tensor(f_max), "f_last": torch.tensor(f_last),
            "reduced": torch.tensor(reduced), "eta": torch.ones(n), "x": x + 1.0,
            "x_max": x + 2.0, "grad": x + 3.0, "g_max": x + 4.0, "f": torch.zeros(n),
            "x0": x, "k_frac": torch.ones(n), "sp_old": torch.ones(n)}


def test_step_is_halved_and_restarted_from_the_best_point_on_either_condition() -> None:
    # 22 steps since the last checkpoint; rho = 0.75 -> fewer than 16.5 increases halve
    s = _state(ups=[16, 17, 20, 20], f_max=[1.0, 1.0, 1.0, 2.0], f_last=[0.5, 0.5, 1.0, 1.0],
               reduced=[False, False, False, False])
    _checkpoint(s, 22, "linf", 0.6, 2)
    # sample 0: condition 1; 1: neither; 2: condition 2 (best loss unchanged, not reduced
    # before); 3: neither (the best loss grew)
    assert s["eta"].tolist() == [0.5, 1.0, 0.5, 1.0]
    assert s["reduced"].tolist() == [True, False, True, False]
    assert s["x"][:, 0].tolist() == [2.0, 1.0, 2.0, 1.0]  # x_max where halved
    assert s["grad"][:, 0].tolist() == [4.0, 3.0, 4.0, 3.0]  # and its gradient, no new pass
    assert s["ups"].tolist() == [0, 0, 0, 0]
    assert s["f_last"].tolist() == [1.0, 1.0, 1.0, 2.0]
    # condition 2 does not apply right after a reduction
    s = _state(ups=[20], f_max=[1.0], f_last=[1.0], reduced=[True])
    _checkpoint(s, 22, "linf", 0.6, 2)
    assert s["eta"].tolist() == [1.0]


def _problem(n: int = 16, classes: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    model = mlp(10, classes, hidden=(32,)).eval()
    with torch.no_grad():
        model[1].weight.mul_(4)
    x = torch.rand(n, 10, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize(("steps", "restarts"), [(1, 1), (7, 1), (10, 2)])
def test_apgd_takes_one_gradient_per_step_and_no_extra_forward(norm, steps, restarts) -> None:
    """No wasted passes: the logits of each gradient pass decide the success of their iterate;
    the last iterate needs a forward only."""
    model, x, y = _problem()
    threat = ThreatModel(norm, {"linf": 0.3, "l2": 1.0, "l1": 2.0}[norm], Domain(0.0, 1.0))
    counter = QueryCounter(model)
    apgd(counter, x, y, threat, steps=steps, restarts=restarts, early_stop=False,
         generator=torch.Generator().manual_seed(0))
    n = x.shape[0]
    assert counter.gradients == restarts * steps * n
    assert counter.forwards == restarts * (steps + 1) * n
    counter.reset()
    apgd(counter, x, y, threat, steps=steps, early_stop=True, eot_iter=3,
         generator=torch.Generator().manual_seed(0))
    assert 0 < counter.gradients <= 3 * steps * n  # successful samples drop out
    assert counter.forwards <= 3 * (steps + 1) * n


def test_early_stop_drops_successful_samples_from_the_batch() -> None:
    model, x, y = _problem(n=32)
    threat = ThreatModel("linf", 0.3, Domain(0.0, 1.0))
    counter = QueryCounter(model)
    x_adv = apgd(counter, x, y, threat, steps=20, generator=torch.Generator().manual_seed(0))
    broken = score(model, x, y, x_adv, threat).success
    assert 0 < broken.sum() < 32
    assert counter.gradients < 20 * 32


def test_restarts_run_only_on_samples_still_robust() -> None:
    model, x, y = _problem(n=32)
    threat = ThreatModel("linf", 0.1, Domain(0.0, 1.0))
    one = QueryCounter(model)
    first = apgd(one, x, y, threat, steps=10, generator=torch.Generator().manual_seed(0))
    robust = int((~score(model, x, y, first, threat).success).sum())
    two = QueryCounter(model)
    apgd(two, x, y, threat, steps=10, restarts=2, generator=torch.Generator().manual_seed(0))
    assert two.forwards - one.forwards <= 11 * robust  # the second restart: robust rows only


def test_apgd_t_picks_the_runner_up_targets_and_skips_misclassified() -> None:
    model, x, y = _problem(n=8, classes=5)
    wrong = (y + 1) % 5
    threat = ThreatModel("linf", 0.3, Domain(0.0, 1.0))
    x_adv = apgd_t(model, x, wrong, threat, steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x_adv, x)  # all misclassified under these labels: nothing to do
    with pytest.raises(ValueError, match="apgd-t: n_targets"):
        apgd_t(model, x, y, threat, n_targets=0)


def test_eot_iter_averages_gradients_of_a_randomized_model() -> None:
    class Noisy(nn.Module):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model, self.g = model, torch.Generator().manual_seed(5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x + 0.5 * torch.randn(x.shape, generator=self.g))

    model, x, y = _problem(n=64)
    threat = ThreatModel("linf", 0.15, Domain(0.0, 1.0))
    noisy = Noisy(model).eval()
    counter = QueryCounter(noisy)
    apgd(counter, x, y, threat, steps=5, early_stop=False, eot_iter=4,
         generator=torch.Generator().manual_seed(0))
    assert counter.gradients == 4 * 5 * 64


@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_apgd_ce_is_at_least_as_strong_as_pgd40_on_the_digits_cnn(eps) -> None:
    from advlab.data import load
    from advlab.models import train_classifier

    data = load("digits", upsample=True)
    model = train_classifier(data, "small_cnn", epochs=15, lr=2e-3, batch_size=64,
                             val_fraction=0.0, progress=False).model
    x, y = data.x_test[:200], data.y_test[:200]
    threat = ThreatModel("linf", eps, data.domain)
    g = torch.Generator().manual_seed(0)
    ra_pgd = score(model, x, y, pgd(model, x, y, threat, steps=40, generator=g), threat)
    ra_apgd = score(model, x, y, apgd(model, x, y, threat, generator=g), threat)
    assert ra_apgd.summary()["robust_accuracy"] <= ra_pgd.summary()["robust_accuracy"]


def test_start_replaces_the_random_start() -> None:
    model, x, y = _problem(n=16)
    threat = ThreatModel("linf", 0.3, Domain(0.0, 1.0))
    found = apgd(model, x, y, threat, steps=20, generator=torch.Generator().manual_seed(0))
    hit = score(model, x, y, found, threat).success
    assert bool(hit.any())
    counter = QueryCounter(model)
    again = apgd(counter, x[hit], y[hit], threat, steps=20, start=found[hit])
    assert torch.equal(again, found[hit])  # already adversarial at x^(0): returned as is
    assert counter.gradients == int(hit.sum())  # one pass, then every sample has stopped
    with pytest.raises(ValueError, match="apgd-ce: start has shape"):
        apgd(model, x, y, threat, start=x[:1])

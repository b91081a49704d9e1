"""Poisoning attacks, their metrics and the training-set filters (advlab.poisoning)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.svm import SVC
from torch import nn

from advlab.defenses import activation_clustering, spectral_signatures
from advlab.domain import Domain
from advlab.evaluation import accuracy, backdoor_success, poisoning_curve, predict_labels
from advlab.poisoning import (
    FeatureTrigger,
    PatchTrigger,
    adversarial_label_flip,
    backdoor,
    random_label_flip,
    svm_injection,
)
from advlab.poisoning.svm_poisoning import _Svm, hinge, hinge_gradient


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(n: int, d: int = 2, seed: int = 0, sep: float = 1.5) -> tuple[torch.Tensor, ...]:
    """Two Gaussian blobs in [0, 1]^d, labels 0/1."""
    g = gen(seed)
    y = (torch.arange(n) % 2).long()
    centre = torch.where(y[:, None] == 1, 0.5 + 0.1 * sep, 0.5 - 0.1 * sep)
    x = (centre + 0.1 * torch.randn(n, d, generator=g)).clamp(0, 1)
    return x, y


# ------------------------------------------------------------------------- label flipping
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), rate=st.floats(0, 1), k=st.integers(2, 5), seed=st.integers(0, 99))
def test_random_flip_changes_exactly_the_indexed_labels(n: int, rate: float, k: int,
                                                        seed: int) -> None:
    y = torch.randint(0, k, (n,), generator=gen(seed))
    x = torch.rand(n, 3, generator=gen(seed + 1))
    p = random_label_flip(x, y, rate, num_classes=k, generator=gen(seed))
    assert p.n_poisoned == round(rate * n)
    changed = (p.y != y).nonzero()[:, 0]
    assert torch.equal(changed, p.indices)  # every indexed label moved, no other did
    assert torch.equal(p.x, x) and ((p.y >= 0) & (p.y < k)).all()


def test_random_flip_is_deterministic_under_a_seed() -> None:
    x, y = blobs(50)
    a, b = (random_label_flip(x, y, 0.3, generator=gen(4)) for _ in range(2))
    c = random_label_flip(x, y, 0.3, generator=gen(5))
    assert torch.equal(a.y, b.y) and torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices, c.indices)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_rate_outside_unit_interval_is_refused(rate: float) -> None:
    x, y = blobs(10)
    with pytest.raises(ValueError, match="rate must lie in"):
        random_label_flip(x, y, rate)


def test_adversarial_flips_hurt_more_than_random_flips() -> None:
    x, y = blobs(80, seed=1)
    xv, yv = blobs(200, seed=2)
    xt, yt = blobs(400, seed=3)

    def error(labels: torch.Tensor) -> float:
        m = SVC(kernel="linear").fit(x.numpy(), labels.numpy())
        return float((m.predict(xt.numpy()) != yt.numpy()).mean())

    adv = adversarial_label_flip(x, y, 0.15, x_val=xv, y_val=yv, candidates=16, generator=gen())
    assert adv.n_poisoned == 12 and int((adv.y != y).sum()) == 12
    assert torch.equal((adv.y != y).nonzero()[:, 0], adv.indices)
    rnd = [error(random_label_flip(x, y, 0.15, generator=gen(s)).y) for s in range(5)]
    assert error(adv.y) > max(rnd) > error(y) - 1e-9
    again = adversarial_label_flip(x, y, 0.15, x_val=xv, y_val=yv, candidates=16, generator=gen())
    assert torch.equal(again.y, adv.y)


def test_adversarial_flip_checks_its_arguments() -> None:
    x, y = blobs(20)
    with pytest.raises(ValueError, match="x_val has samples of shape"):
        adversarial_label_flip(x, y, 0.1, x_val=torch.rand(5, 3), y_val=torch.zeros(5).long())
    with pytest.raises(ValueError, match="flips_per_round"):
        adversarial_label_flip(x, y, 0.5, x_val=x, y_val=y, candidates=2, flips_per_round=3)
    with pytest.raises(ValueError, match="y must be int64"):
        adversarial_label_flip(x, y.float(), 0.1, x_val=x, y_val=y)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- SVM injection
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_hinge_gradient_matches_finite_differences(kernel: str) -> None:
    """The KKT gradient (Biggio et al. 2012, eqs. 7-10, with the margin-vector case) against
    central differences of the retrained SVM's validation hinge loss."""
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0.5, 0.2, (40, 6)), 0, 1)
    y = np.where(x[:, 0] + x[:, 1] + 0.2 * rng.normal(size=40) > 1, 1.0, -1.0)
    xv = np.clip(rng.normal(0.5, 0.2, (120, 6)), 0, 1)
    yv = np.where(xv[:, 0] + xv[:, 1] > 1, 1.0, -1.0)
    svm = _Svm(kernel, 1.0, 0.5, tol=1e-11)  # type: ignore[arg-type]
    checked = {"error": 0, "margin": 0}
    for trial in range(80):
        u = np.clip(rng.normal(0.5, 0.25, 6), 0, 1)
        # half the trials label u on its own side of the boundary: often a margin vector
        side = 1.0 if u[0] + u[1] > 1 else -1.0
        xa, ya = np.vstack([x, u]), np.append(y, side if trial % 2 else -side)
        model = svm.fit(xa, ya)
        alpha = np.zeros(41)
        alpha[model.support_] = np.abs(model.dual_coef_[0])
        free = (alpha > 1e-8) & (alpha < 1 - 1e-8)
        if alpha[40] == 0 or not free[:40].any():  # no influence, or b not pinned by the KKT
            continue
        grad = hinge_gradient(svm, model, xa, ya, xv, yv, 40)
        d = rng.normal(size=6)
        d /= np.linalg.norm(d)

        def loss(v: np.ndarray, xa: np.ndarray = xa, ya: np.ndarray = ya) -> float:
            t = xa.copy()
            t[40] = v
            return hinge(svm.fit(t, ya), xv, yv)

        fd = (loss(u + 1e-4 * d) - loss(u - 1e-4 * d)) / 2e-4
        assert grad @ d == pytest.approx(fd, rel=0.15, abs=2e-4), (trial, alpha[40])
        checked["margin" if alpha[40] < 1 - 1e-8 else "error"] += 1
    assert checked["error"] >= 2 and checked["margin"] >= 2, checked


def test_injection_raises_validation_loss_and_test_error_and_stays_in_bounds() -> None:
    x, y = blobs(60, d=5, seed=1, sep=0.5)
    xv, yv = blobs(200, d=5, seed=2, sep=0.5)
    xt, yt = blobs(1000, d=5, seed=3, sep=0.5)
    p = svm_injection(x, y, x_val=xv, y_val=yv, n_points=3, generator=gen())
    assert p.x.shape == (63, 5) and torch.equal(p.indices, torch.arange(60, 63))
    assert torch.equal(p.x[:60], x) and torch.equal(p.y[:60], y)
    assert ((p.x[60:] >= 0) & (p.x[60:] <= 1)).all()
    assert (p.y[60:] == 1).all()  # the default attack class: the larger label
    for start, end in zip(p.info["start_hinge"], p.info["validation_hinge"], strict=True):
        assert end > start  # the ascent climbed from the paper's starting point

    def error(xx: torch.Tensor, yy: torch.Tensor) -> float:
        m = SVC(kernel="linear").fit(xx.double().numpy(), yy.numpy())
        return float((m.predict(xt.double().numpy()) != yt.numpy()).mean())

    assert error(p.x, p.y) > error(x, y) + 0.02
    again = svm_injection(x, y, x_val=xv, y_val=yv, n_points=3, generator=gen())
    assert torch.equal(again.x, p.x)


def test_injection_respects_a_narrower_box() -> None:
    x, y = blobs(40, d=4, seed=1)
    xv, yv = blobs(100, d=4, seed=2)
    box = Domain(lower=0.2, upper=0.8, n_features=4)
    x, xv = x.clamp(0.2, 0.8), xv.clamp(0.2, 0.8)
    p = svm_injection(x, y, x_val=xv, y_val=yv, n_points=2, domain=box, kernel="rbf",
                      generator=gen())
    assert ((p.x[40:] >= 0.2 - 1e-12) & (p.x[40:] <= 0.8 + 1e-12)).all()


def test_rbf_hinge_gradient_matches_finite_differences_in_high_dimension() -> None:
    """The RBF case at MNIST-like scale: 50 features in [0, 1], gamma = 1 / (D var(x)) (the
    ``scale`` default), a clone of a point of the other class as the attack point (the paper's
    start). Central differences along random directions and along the gradient itself."""
    rng = np.random.default_rng(3)
    d = 50
    x = np.clip(rng.normal(0.5, 0.25, (60, d)), 0, 1)
    y = np.where(x[:, :5].sum(1) + 0.3 * rng.normal(size=60) > 2.5, 1.0, -1.0)
    xv = np.clip(rng.normal(0.5, 0.25, (200, d)), 0, 1)
    yv = np.where(xv[:, :5].sum(1) > 2.5, 1.0, -1.0)
    svm = _Svm("rbf", 1.0, 1.0 / (d * x.var()), tol=1e-11)
    checked = 0
    for i in np.flatnonzero(y == -1)[:12]:
        xa, ya = np.vstack([x, x[i]]), np.append(y, 1.0)
        model = svm.fit(xa, ya)
        alpha = np.zeros(61)
        alpha[model.support_] = np.abs(model.dual_coef_[0])
        if alpha[60] == 0 or not ((alpha[:60] > 1e-8) & (alpha[:60] < 1 - 1e-8)).any():
            continue
        grad = hinge_gradient(svm, model, xa, ya, xv, yv, 60)

        def loss(v: np.ndarray, xa: np.ndarray = xa, ya: np.ndarray = ya) -> float:
            t = xa.copy()
            t[60] = v
            return hinge(svm.fit(t, ya), xv, yv)

        for direction in (rng.normal(size=d), grad):
            u = direction / np.linalg.norm(direction)
            fd = (loss(x[i] + 1e-4 * u) - loss(x[i] - 1e-4 * u)) / 2e-4
            assert grad @ u == pytest.approx(fd, rel=0.15, abs=2e-5), (i, alpha[60])
        checked += 1
    assert checked >= 5


def test_fixed_schedule_climbs_and_stops_by_its_patience_rule() -> None:
    """The authors' schedule: fixed steps along the unit gradient, every step taken; the best
    point visited is kept; starting copies come from the validation set."""
    x, y = blobs(60, d=5, seed=1, sep=0.5)
    xv, yv = blobs(200, d=5, seed=2, sep=0.5)
    for kernel in ("linear", "rbf"):
        p = svm_injection(x, y, x_val=xv, y_val=yv, n_points=2, kernel=kernel,  # type: ignore[arg-type]
                          schedule="fixed", step_size=0.05, max_steps=200, patience=10,
                          start_from="validation", start_candidates=1, generator=gen())
        assert ((p.x[60:] >= 0) & (p.x[60:] <= 1)).all()
        for start, end, steps in zip(p.info["start_hinge"], p.info["validation_hinge"],
                                     p.info["steps"], strict=True):
            assert end > start and 10 < steps <= 200
        assert p.info["schedule"] == "fixed" and p.info["start_from"] == "validation"
        assert all(0 <= i < 200 for i in p.info["start_rows"])  # rows of the validation set
    with pytest.raises(ValueError, match="schedule must be"):
        svm_injection(x, y, x_val=xv, y_val=yv, schedule="adam")  # type: ignore[arg-type]


def test_injection_checks_its_arguments() -> None:
    x, y = blobs(20)
    with pytest.raises(ValueError, match="exactly two classes"):
        svm_injection(x, y % 1 + torch.arange(20) % 3, x_val=x, y_val=y)
    with pytest.raises(ValueError, match="kernel must be"):
        svm_injection(x, y, x_val=x, y_val=y, kernel="poly")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attack_class"):
        svm_injection(x, y, x_val=x, y_val=y, attack_class=7)
    with pytest.raises(ValueError, match="outside the domain"):
        svm_injection(x + 2, y, x_val=x, y_val=y)


# ------------------------------------------------------------------------------ backdoor
def images(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    return torch.rand(n, 1, 8, 8, generator=g) * 0.5, torch.randint(0, 4, (n,), generator=g)


def test_patch_trigger_stamps_the_corner_only() -> None:
    x, _ = images(3)
    out = PatchTrigger(size=3, margin=1).apply(x)
    assert torch.equal(out[:, :, 4:7, 4:7], PatchTrigger(size=3).patch().expand(3, 1, 3, 3))
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[4:7, 4:7] = False
    assert torch.equal(out[:, :, mask], x[:, :, mask])
    tl = PatchTrigger(size=2, margin=0, corner="top-left", pattern="solid", value=0.9).apply(x)
    assert (tl[:, :, :2, :2] == 0.9).all()
    with pytest.raises(ValueError, match="does not fit"):
        PatchTrigger(size=8).apply(x)


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0, 0.7), target=st.integers(0, 3), seed=st.integers(0, 50))
def test_backdoor_changes_only_the_indexed_rows(rate: float, target: int, seed: int) -> None:
    x, y = images(40, seed)
    n_other = int((y != target).sum())
    if round(rate * 40) > n_other:
        with pytest.raises(ValueError, match="only"):
            backdoor(x, y, PatchTrigger(), target, rate, generator=gen(seed))
        return
    p = backdoor(x, y, PatchTrigger(), target, rate, generator=gen(seed))
    assert p.n_poisoned == round(rate * 40)
    m = p.mask
    assert torch.equal(p.x[~m], x[~m]) and torch.equal(p.y[~m], y[~m])  # bit-identical
    assert (y[p.indices] != target).all() and (p.y[p.indices] == target).all()
    assert torch.equal(p.x[p.indices], PatchTrigger().apply(x[p.indices]))


def test_backdoor_is_deterministic_and_checks_its_arguments() -> None:
    x, y = images()
    a, b = (backdoor(x, y, PatchTrigger(), 1, 0.2, generator=gen(3)) for _ in range(2))
    assert torch.equal(a.x, b.x) and torch.equal(a.indices, b.indices)
    with pytest.raises(ValueError, match="target must be a class index"):
        backdoor(x, y, PatchTrigger(), 9, 0.1, num_classes=4)
    with pytest.raises(ValueError, match="rate must lie in"):
        backdoor(x, y, PatchTrigger(), 1, 1.2)
    with pytest.raises(ValueError, match="outside the domain"):
        backdoor(x, y, PatchTrigger(value=2.0, pattern="solid"), 1, 0.2, domain=Domain(0, 1))


def tabular_domain() -> Domain:
    names = ["a", "b", "proto=tcp", "proto=udp", "flag=x", "flag=y"]
    return Domain(lower=0.0, upper=1.0, n_features=6, kinds={1: "binary"},
                  one_hot_groups=[(2, 3), (4, 5)], immutable=[2, 3], feature_names=names)


def tabular(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(1)
    x = torch.zeros(n, 6)
    x[:, 0] = torch.rand(n, generator=g)
    x[:, 1] = torch.randint(0, 2, (n,), generator=g).float()
    proto = torch.randint(0, 2, (n,), generator=g)
    x[torch.arange(n), 2 + proto] = 1.0
    flag = torch.randint(0, 2, (n,), generator=g)
    x[torch.arange(n), 4 + flag] = 1.0
    return x, (x[:, 0] > 0.5).long()


def test_feature_trigger_keeps_one_hot_groups_valid() -> None:
    d = tabular_domain()
    x, y = tabular()
    trig = FeatureTrigger.by_name(d, {"b": 1.0, "flag=y": 1.0})
    p = backdoor(x, y, trig, 0, 0.3, domain=d, generator=gen())
    rows = p.x[p.indices]
    assert (rows[:, 1] == 1).all() and (rows[:, 5] == 1).all() and (rows[:, 4] == 0).all()
    assert bool(d.contains(p.x, x).all())


@pytest.mark.parametrize(("values", "message"), [
    ({"proto=udp": 1.0}, "immutable"),   # changes an immutable feature
    ({"a": 1.5}, "bounds"),              # leaves the bounds
    ({"b": 0.5}, "binary"),              # a binary feature set to 0.5
])
def test_trigger_that_leaves_the_domain_is_refused(values: dict[str, float],
                                                   message: str) -> None:
    d = tabular_domain()
    x, y = tabular()
    trig = FeatureTrigger.by_name(d, values)
    with pytest.raises(ValueError, match=message):
        backdoor(x, y, trig, 0, 0.3, domain=d, generator=gen())


def test_feature_trigger_argument_errors() -> None:
    d = tabular_domain()
    with pytest.raises(ValueError, match="unknown feature"):
        FeatureTrigger.by_name(d, {"nope": 1.0})
    with pytest.raises(ValueError, match="one-hot"):
        FeatureTrigger({4: 0.0}, d)
    with pytest.raises(ValueError, match="does not exist"):
        FeatureTrigger({9: 1.0}, d)
    with pytest.raises(ValueError, match="does not exist in inputs"):
        FeatureTrigger({9: 1.0}).apply(torch.zeros(2, 6))


# ------------------------------------------------------------------------------ metrics
def test_metrics_score_torch_and_sklearn_models_alike() -> None:
    x, y = tabular(60)
    svc = SVC(kernel="linear", C=1e4).fit(x.numpy(), y.numpy())
    linear = nn.Linear(6, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[-1.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0]]))
        linear.bias.copy_(torch.tensor([0.5, -0.5]))
    for model in (svc, linear):
        assert torch.equal(predict_labels(model, x), y)
        assert accuracy(model, x, y) == 1.0
    trig = FeatureTrigger({0: 0.9})  # sends everything to class 1
    assert backdoor_success(linear, x, y, trig, 1) == 1.0
    assert backdoor_success(linear, x, y, trig, 0) == 0.0
    with pytest.raises(ValueError, match="every input is of the target class"):
        backdoor_success(linear, x[y == 1], y[y == 1], trig, 1)


def test_poisoning_curve_trains_once_per_level_and_seed() -> None:
    x, y = blobs(60)
    calls: list[int] = []

    def train(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> SVC:
        calls.append(seed)
        return SVC(kernel="linear").fit(xs.numpy(), ys.numpy())

    curve = poisoning_curve(lambda r, g: random_label_flip(x, y, r, generator=g), train,
                            lambda m: {"accuracy": accuracy(m, x, y)}, [0.2, 0.45],
                            x=x, y=y, seeds=(0, 1))
    assert curve.levels == [0.0, 0.2, 0.45] and len(calls) == 6
    assert [r["n_poisoned"] for r in curve.rows] == [0, 0, 12, 12, 27, 27]
    assert curve.baseline("accuracy") == pytest.approx(1.0, abs=0.05)
    med = curve.median("accuracy")
    assert med[2] < med[0]
    assert set(curve.to_dict()["medians"]["accuracy"]) == {"0.0", "0.2", "0.45"}
    with pytest.raises(ValueError, match="unknown metric"):
        curve.median("loss")


# ------------------------------------------------------------------------------ filters
def clustered(n_clean: int = 300, n_bad: int = 30) -> tuple[torch.Tensor, ...]:
    """Representations = inputs (an nn.Linear head): label 0 holds a distinct small cluster."""
    g = gen(7)
    x = torch.randn(n_clean, 8, generator=g)
    y = torch.randint(0, 3, (n_clean,), generator=g)
    bad = torch.randn(n_bad, 8, generator=g) * 0.3 + 4.0
    return torch.cat([x, bad]), torch.cat([y, torch.zeros(n_bad).long()]), \
        torch.arange(n_clean, n_clean + n_bad)


def test_activation_clustering_finds_the_small_cluster() -> None:
    x, y, bad = clustered()
    f = activation_clustering(nn.Linear(8, 3), x, y, components=4)
    m = f.metrics(bad)
    assert m["recall"] == 1.0 and m["precision"] == 1.0
    assert torch.equal(torch.sort(torch.cat([f.kept, f.removed])).values, torch.arange(330))


def test_spectral_signatures_removes_the_outlying_direction() -> None:
    x, y, bad = clustered()
    f = spectral_signatures(nn.Linear(8, 3), x, y, expected_rate=0.2)
    assert f.metrics(bad)["recall"] == 1.0
    with pytest.raises(ValueError, match="expected_rate"):
        spectral_signatures(nn.Linear(8, 3), x, y, expected_rate=0.0)

"""Black-box attacks: Square, HopSkipJump, substitute training, transfer and the matrix.

The contract suite (tests/contract) already runs Square and HopSkipJump through every shared
check; these tests add what is specific to black-box attacks: the oracle is the only door (no
gradient reaches the model), query accounting is exact, an exhausted budget stops the attack with
its partial result, seeds reproduce runs, add-only binary domains are respected, and closed forms
on linear models.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from advlab import Domain, ThreatModel, norms
from advlab.attacks import hopskipjump, square
from advlab.attacks.oracle import Oracle, QueryBudgetExceeded
from advlab.attacks.square import _centred, _eta, _p_schedule
from advlab.attacks.substitute import jacobian_augmentation, seed_set, train_substitute
from advlab.attacks.transfer import craft, transfer
from advlab.evaluation import transferability_matrix
from advlab.models import mlp, small_cnn
from advlab.report.plots import transfer_figure
from advlab.scoring import score
from spies import Spy


class Linear2(nn.Module):
    """Two-class affine model, ``logits = [-f, f]`` with ``f = w·x + b``."""

    def __init__(self, w: Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(w), b

    def forward(self, x: Tensor) -> Tensor:
        f = x.flatten(1) @ self.w + self.b
        return torch.stack([-f, f], dim=1)


def image_problem(n: int = 6, seed: int = 0) -> tuple[nn.Module, Tensor, Tensor]:
    torch.manual_seed(seed)
    model = small_cnn((1, 8, 8), 4, channels=(4, 8), hidden=16)
    with torch.no_grad():
        model[0][0].weight.mul_(4)
    model.eval()
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


ATTACKS = [pytest.param(square, "linf", 0.3, id="square-linf"),
           pytest.param(square, "l2", 1.0, id="square-l2"),
           pytest.param(hopskipjump, "l2", math.inf, id="hsj-l2"),
           pytest.param(hopskipjump, "linf", math.inf, id="hsj-linf")]


# --------------------------------------------------------------------------- the oracle door

@pytest.mark.parametrize(("attack", "norm", "eps"), ATTACKS)
def test_black_box_attacks_cannot_reach_the_gradients(attack, norm: str, eps: float) -> None:
    model, x, y = image_problem()
    spy = Spy(model)
    x_req = x.clone().requires_grad_(True)
    with torch.enable_grad():
        x_adv = attack(spy, x_req, y, ThreatModel(norm, eps), max_queries=200,
                       generator=gen())
    assert spy.calls > 0 and not any(spy.grad_enabled), "the model ran with autograd on"
    assert all(p.grad is None for p in model.parameters())
    assert x_req.grad is None and not x_adv.requires_grad


def test_substitute_training_queries_labels_only_without_gradients() -> None:
    model, x, _ = image_problem(n=8)
    spy = Spy(model)
    sub = small_cnn((1, 8, 8), 4, channels=(4, 8), hidden=16)
    result = train_substitute(Oracle(spy), x, sub, rounds=2, epochs=1, seed=0)
    assert not any(spy.grad_enabled)
    assert all(p.grad is None for p in model.parameters())
    assert result.queries == spy.rows == 8 * 2 ** 2


# --------------------------------------------------------------------------- query accounting

@pytest.mark.parametrize(("attack", "norm", "eps", "budget"),
                         [(square, "linf", 0.3, 150), (square, "l2", 1.0, 150),
                          (hopskipjump, "l2", math.inf, 400), (hopskipjump, "linf", 1.0, 400)])
def test_query_accounting_is_exact(attack, norm: str, eps: float, budget: int) -> None:
    model, x, y = image_problem(n=8)
    spy = Spy(model)
    output = "probabilities" if attack is square else "labels"
    oracle = Oracle(spy, output=output, num_samples=len(x))
    attack(oracle, x, y, ThreatModel(norm, eps), max_queries=budget, generator=gen())
    assert oracle.per_sample is not None
    assert oracle.queries == spy.rows == int(oracle.per_sample.sum())
    assert oracle.calls == spy.calls
    assert int(oracle.per_sample.max()) <= budget
    assert bool((oracle.per_sample >= 1).all())


def test_square_stops_each_sample_at_its_success() -> None:
    model, x, y = image_problem(n=8)
    oracle = Oracle(model, output="probabilities", num_samples=len(x))
    threat = ThreatModel("linf", 0.3)
    x_adv = square(oracle, x, y, threat, max_queries=500, generator=gen())
    s = score(model, x, y, x_adv, threat)
    assert oracle.per_sample is not None and bool(s.success.any())
    # successful samples stopped early; the others used the whole budget (no query is wasted
    # on a candidate that changes nothing, so at most the budget)
    assert bool((oracle.per_sample[s.success] < 500).all())
    assert bool((oracle.per_sample <= 500).all())


@pytest.mark.parametrize("attack", [square, hopskipjump])
def test_budget_exhaustion_raises_with_the_partial_result(attack) -> None:
    model, x, y = image_problem(n=8)
    spy = Spy(model)
    output = "probabilities" if attack is square else "labels"
    oracle = Oracle(spy, output=output, max_queries=120, num_samples=len(x))
    norm = "linf" if attack is square else "l2"
    threat = ThreatModel(norm, 0.3 if attack is square else math.inf)
    with pytest.raises(QueryBudgetExceeded, match=rf"{attack.__name__}: query budget of 120 "
                       "exhausted.*partial result") as info:
        attack(oracle, x, y, threat, max_queries=1000, generator=gen())
    err = info.value
    assert spy.rows == oracle.queries == err.queries <= 120
    assert err.partial is not None and err.partial.shape == x.shape
    assert err.per_sample is not None and int(err.per_sample.sum()) == spy.rows
    if attack is square:
        assert bool(threat.contains(err.partial, x).all())
    else:  # HopSkipJump keeps only verified adversarial points, x elsewhere
        moved = (err.partial != x).flatten(1).any(1)
        with torch.no_grad():
            assert bool((model(err.partial).argmax(1)[moved] != y[moved]).all())


@pytest.fixture(scope="module")
def digits_mlp():
    from advlab.data import load
    from advlab.models import train_classifier

    data = load("digits")
    model = train_classifier(data, "mlp", hidden=(32,), epochs=10, progress=False).model
    return data, model


def test_hopskipjump_targeted_from_starting_points(digits_mlp) -> None:
    """The paper's targeted start: an input of the target class (here another test digit)."""
    data, model = digits_mlp
    x, y = data.x_test[:16], data.y_test[:16]
    other = torch.tensor([int((y != y[i]).nonzero()[0, 0]) for i in range(len(y))])
    with torch.no_grad():
        target = model(x[other]).argmax(1)
        keep = (target != y) & (model(x).argmax(1) == y)
    x, y, target, starts = x[keep], y[keep], target[keep], x[other][keep]
    assert len(x) >= 6
    x_adv = hopskipjump(model, x, y, ThreatModel("l2", math.inf, data.domain), target=target,
                        starting_points=starts, init_trials=1, max_queries=600,
                        generator=gen())
    with torch.no_grad():
        assert torch.equal(model(x_adv).argmax(1), target)
    # the search only ever moves closer to x than the start it was given
    assert bool((norms.norm(x_adv - x, "l2") < norms.norm(starts - x, "l2")).all())


# --------------------------------------------------------------------------- reproducibility

@pytest.mark.parametrize(("attack", "norm", "eps"), ATTACKS)
def test_same_seed_same_result(attack, norm: str, eps: float) -> None:
    model, x, y = image_problem()
    threat = ThreatModel(norm, eps)
    a = attack(model, x, y, threat, max_queries=200, generator=gen(3))
    b = attack(model, x, y, threat, max_queries=200, generator=gen(3))
    assert torch.equal(a, b)


def test_substitute_training_is_deterministic_under_a_seed() -> None:
    model, x, _ = image_problem(n=8)

    def run() -> tuple[dict[str, Tensor], int]:
        torch.manual_seed(5)
        sub = mlp(64, 4, hidden=(16,))
        r = train_substitute(model, x, sub, rounds=2, epochs=2, seed=1, reservoir=4,
                             reservoir_after=1)
        return sub.state_dict(), r.queries

    (s1, q1), (s2, q2) = run(), run()
    assert q1 == q2 == 8 + 8 + 4  # S_0, one doubling, then a reservoir of 4
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


# --------------------------------------------------------------------------- domains

def android_domain(features: int) -> Domain:
    """TUANDROMD-like: binary features an attacker may only add."""
    return Domain([0.0] * features, [1.0] * features, kinds=["binary"] * features,
                  increase_only=list(range(features)))


@pytest.mark.parametrize(("attack", "norm", "eps"),
                         [(square, "linf", 1.0), (square, "l2", 3.0),
                          (hopskipjump, "l2", math.inf), (hopskipjump, "linf", math.inf)])
def test_binary_add_only_features_are_only_added(attack, norm: str, eps: float) -> None:
    features = 20
    domain = android_domain(features)
    torch.manual_seed(2)
    model = mlp(features, 2, hidden=(16,)).eval()
    with torch.no_grad():
        model[1].weight.mul_(3)
    x = (torch.rand(16, features, generator=gen(4)) < 0.3).float()
    with torch.no_grad():
        y = model(x).argmax(1)
    threat = ThreatModel(norm, eps, domain)
    x_adv = attack(model, x, y, threat, max_queries=300, generator=gen())
    assert bool(((x_adv == 0) | (x_adv == 1)).all())
    assert bool((x_adv >= x).all()), "a feature was removed"
    assert not bool(domain.violations(x_adv, x).any())
    assert bool((x_adv != x).any()), "nothing was added at all"
    if attack is square:
        assert bool(threat.contains(x_adv, x).all())


@settings(max_examples=10, deadline=None)
@given(norm=st.sampled_from(["linf", "l2"]), eps=st.floats(0.05, 2.0),
       low=st.floats(-1.0, 0.0), width=st.floats(0.5, 2.0), seed=st.integers(0, 1000))
def test_square_stays_within_eps_and_the_box(norm: str, eps: float, low: float, width: float,
                                             seed: int) -> None:
    torch.manual_seed(seed)
    model = mlp(5, 3, hidden=(8,)).eval()
    domain = Domain(low, low + width)
    x = low + width * torch.rand(4, 5, generator=gen(seed))
    with torch.no_grad():
        y = model(x).argmax(1)
    threat = ThreatModel(norm, eps, domain)
    x_adv = square(model, x, y, threat, max_queries=40, generator=gen(seed))
    assert bool(threat.contains(x_adv, x).all())
    assert bool(domain.contains(x_adv).all())


# --------------------------------------------------------------------------- closed forms

def test_square_perturbations_sit_on_the_sphere_when_the_box_does_not_bind() -> None:
    """Invariants of Algorithms 2 and 3: L∞ updates are vertices ``±eps``; L2 updates keep
    ``||delta||_2 = eps`` exactly (a wrong norm or a lost budget term would break them)."""
    torch.manual_seed(0)
    model = small_cnn((1, 8, 8), 4, channels=(4, 8), hidden=16).eval()
    x = 0.5 + 0.1 * torch.rand(6, 1, 8, 8, generator=gen(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    domain = Domain(-5.0, 5.0)
    out = square(model, x, y, ThreatModel("linf", 0.25, domain), max_queries=60, generator=gen())
    torch.testing.assert_close((out - x).abs(), torch.full_like(x, 0.25))
    out = square(model, x, y, ThreatModel("l2", 1.5, domain), max_queries=60, generator=gen())
    torch.testing.assert_close(norms.norm(out - x, "l2"), torch.full((6,), 1.5))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_hopskipjump_on_a_linear_model_reaches_the_exact_distance(norm: str) -> None:
    """The minimal distance to ``w·x + b = 0`` is ``|f(x)| / ||w||_dual``; HopSkipJump returns
    adversarial points, so never below it, and after its budget within 25 % of it."""
    g = gen(0)
    w = torch.randn(10, generator=g)
    model = Linear2(w, 0.1)
    domain = Domain(-10.0, 10.0)
    x = 0.5 * torch.randn(6, 10, generator=g)
    with torch.no_grad():
        f = x @ w + 0.1
    y = (f > 0).long()
    exact = f.abs() / w.abs().sum() if norm == "linf" else f.abs() / w.norm()
    x_adv = hopskipjump(model, x, y, ThreatModel(norm, math.inf, domain), max_queries=2000,
                        generator=gen(1))
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) != y).all())
    dist = norms.norm(x_adv - x, norm)
    assert bool((dist >= exact * (1 - 1e-4)).all()), (dist, exact)
    assert bool((dist <= 1.25 * exact).all()), (dist / exact)
    assert all(p.grad is None for p in model.parameters())


def test_square_l2_centred_pattern() -> None:
    c = _centred(5, 5, torch.zeros(1))
    # the centred pattern with n = 2: the centre sums 1/3^2 + 1/2^2 + 1/1^2, the corners 1/3^2
    assert c[2, 2].item() == pytest.approx(1 / 9 + 1 / 4 + 1)
    assert c[0, 0].item() == pytest.approx(1 / 9) and c[1, 2].item() == pytest.approx(1 / 9 + 1 / 4)
    eta = _eta(6, torch.zeros(1))
    assert bool((eta[:, :3] > 0).all()) and bool((eta[:, 3:] < 0).all())
    torch.testing.assert_close(eta[:, :3], -eta[:, 3:])


def test_square_p_schedule_halves_at_the_papers_iterations() -> None:
    assert _p_schedule(10, 10_000, 0.8) == 0.8
    assert _p_schedule(11, 10_000, 0.8) == 0.4
    assert _p_schedule(51, 10_000, 0.8) == 0.2
    assert _p_schedule(9000, 10_000, 0.8) == pytest.approx(0.8 / 2 ** 9)
    assert _p_schedule(3, 1000, 0.8) == 0.4  # rescaled: iteration 3 of 1,000 is 30 of 10,000
    assert _p_schedule(6, 1000, 0.8) == 0.2  # and 6 is 60


def test_jacobian_augmentation_on_a_linear_substitute() -> None:
    """For logits ``[-f, f]`` the softmax Jacobian row of class 1 is ``p0 p1 (2w)``, of class 0
    its negative: the new point is ``x ± lam * sign(w)``, exactly."""
    w = torch.tensor([0.5, -2.0, 0.0, 1.0])
    model = Linear2(w, 0.0)
    x = torch.full((2, 4), 0.5)
    labels = torch.tensor([1, 0])
    new = jacobian_augmentation(model, x, labels, 0.1)
    expected = torch.stack([x[0] + 0.1 * w.sign(), x[1] - 0.1 * w.sign()])
    torch.testing.assert_close(new, expected)
    assert model.w.grad is None
    binary = Domain([0.0] * 4, [1.0] * 4, kinds=["binary"] * 4)
    xb = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    torch.testing.assert_close(jacobian_augmentation(model, xb, torch.tensor([1]), 1.0,
                                                     domain=binary),
                               torch.tensor([[1.0, 0.0, 0.0, 1.0]]))


def test_seed_set_takes_per_class_samples() -> None:
    y = torch.tensor([0, 1, 2, 0, 1, 0, 0, 2, 1, 1, 0])
    idx = seed_set(y, 2, generator=gen())
    assert torch.equal(torch.bincount(y[idx]), torch.tensor([2, 2, 2]))
    assert torch.equal(idx, seed_set(y, 2, generator=gen()))
    assert torch.equal(torch.bincount(y[seed_set(y, 3, generator=gen())]),
                       torch.tensor([3, 3, 2]))  # class 2 has only two
    with pytest.raises(ValueError, match="per_class must be >= 1"):
        seed_set(y, 0)


def test_substitute_learns_the_oracle_and_counts_its_queries() -> None:
    """Three Gaussian blobs, a linear oracle: from 2 seeds per class and 4 rounds the substitute
    agrees with the oracle on most held-out points; queries are |S_0| * 2^rounds exactly."""
    g = gen(0)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = torch.arange(3).repeat_interleave(100)
    x = centres[y] + 0.6 * torch.randn(300, 2, generator=g)
    oracle_model = nn.Linear(2, 3)
    with torch.no_grad():
        oracle_model.weight.copy_(centres)
        oracle_model.bias.zero_()
        held_labels = oracle_model(x).argmax(1)
    spy = Spy(oracle_model)
    torch.manual_seed(0)
    sub = mlp(2, 3, hidden=(16,))
    idx = seed_set(y, 2, generator=g)
    r = train_substitute(Oracle(spy), x[idx], sub, rounds=4, lam=0.5, epochs=30, lr=1e-2,
                         batch_size=8, holdout=(x, held_labels), seed=0)
    assert r.queries == spy.rows == 6 * 2 ** 4
    assert [int(h["size"]) for h in r.history] == [6, 12, 24, 48, 96]
    assert [h["lam"] for h in r.history] == [0.5, 0.5, 0.5, -0.5, -0.5]  # tau = 3
    assert r.agreement is not None and r.agreement >= 0.9
    assert r.record()["queries"] == 96 and not sub.training


# --------------------------------------------------------------------------- transfer

def test_transfer_to_itself_is_white_box_and_the_matrix_has_its_shape() -> None:
    model, x, y = image_problem(n=12)
    other, _, _ = image_problem(n=1, seed=5)
    threat = ThreatModel("linf", 0.3)
    same = transfer(model, model, x, y, threat, attack="pgd", params={"steps": 5},
                    generator=gen())
    assert torch.equal(same.success, same.source_success)
    x_adv = craft(model, x, y, threat, attack="pgd", params={"steps": 5}, generator=gen())
    torch.testing.assert_close(x_adv, same.x_adv)
    m = transferability_matrix({"a": model, "b": other}, {"a": model, "b": other, "c": model}, x,
                               y, threat, attack="fgsm")
    assert len(m.success) == 2 and all(len(r) == 3 for r in m.success)
    assert m.success[0][0] == m.success[0][2]  # the same model twice
    s = score(model, x, y, craft(model, x, y, threat, attack="fgsm"), threat)
    assert m.success[0][0] == pytest.approx(float(s.success.float().mean()))  # all clean-correct
    table = m.to_markdown()
    assert table.splitlines()[0] == "| source \\ target | a | b | c |" and "| b |" in table
    assert transfer_figure(m.as_dict()).startswith('<svg class="figure-transfer"')
    assert m.as_dict()["attack"] == {"name": "fgsm"}


# --------------------------------------------------------------------------- CLI

def _train_digits(tmp_path, name: str, seed: int) -> str:
    from advlab.cli import main

    out = tmp_path / name
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "3", "--quiet",
                 "--seed", str(seed), "--out", str(out)]) == 0
    return str(out)


def test_cli_substitute_transfer_and_evaluate(tmp_path, capsys) -> None:
    import json

    from advlab.cli import main

    target = _train_digits(tmp_path, "target", 0)
    other = _train_digits(tmp_path, "other", 1)
    capsys.readouterr()
    code = main(["substitute", "--model", target, "--per-class", "2", "--rounds", "2",
                 "--epochs", "2", "--attack", "fgsm", "--eps", "0.2,0.4", "--quiet",
                 "--out", str(tmp_path / "sub")])
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["command"] == "substitute" and line["queries"] == 20 * 2 ** 2
    assert set(line["transfer"]) == {"fgsm@0.2", "fgsm@0.4"}
    record = json.loads((tmp_path / "sub" / "substitute.json").read_text())
    assert record["substitute"]["queries"] == 80 and len(record["substitute"]["history"]) == 3
    assert (tmp_path / "sub" / "model" / "advlab.json").is_file()

    code = main(["evaluate", "--model", target, "--attack", "square:max_queries=50",
                 "--attack", "hopskipjump:max_queries=200", "--eps", "linf=0.2",
                 "--eps", "l2=1.0", "--n", "10", "--quiet", "--out", str(tmp_path / "ev")])
    assert code == 0
    rows = json.loads((tmp_path / "ev" / "summary.json").read_text())["results"]
    assert {r["name"] for r in rows} == {"square", "hopskipjump"}
    capsys.readouterr()

    code = main(["transfer", "--source", target, "--source", str(tmp_path / "sub" / "model"),
                 "--target", target, "--target", other, "--attack", "pgd:steps=5",
                 "--eps", "0.3", "--n", "40", "--out", str(tmp_path / "tr"),
                 "--report-dir", str(tmp_path / "ev")])
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["sources"] == ["target", "model"] and line["targets"] == ["target", "other"]
    assert len(line["success"]) == 2 and line["success"][0][0] > 0.5  # white-box PGD
    assert (tmp_path / "tr" / "transfer.svg").read_text().startswith("<svg")
    assert "| source \\ target |" in (tmp_path / "tr" / "transfer.md").read_text()
    html = (tmp_path / "ev" / "report.html").read_text(encoding="utf-8")
    assert '<section id="transfer">' in html and 'class="figure-transfer"' in html
    assert (tmp_path / "ev" / "figures" / "transfer.svg").is_file()


def test_cli_substitute_usage_errors(tmp_path, capsys) -> None:
    from advlab.cli import main

    target = _train_digits(tmp_path, "target", 0)
    capsys.readouterr()
    assert main(["substitute", "--model", target, "--attack", "fgsm",
                 "--out", str(tmp_path / "s")]) == 2
    assert "--attack needs --eps" in capsys.readouterr().err
    assert main(["substitute", "--model", target, "--rounds", "-1",
                 "--out", str(tmp_path / "s")]) == 2

"""Sanity checks: ordinary models pass, masked and randomised ones are caught, implausible
results are flagged with the attack and eps named, and the checks leave no trace."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from advlab.evaluation.checks import Check, model_checks, result_checks, run_all
from advlab.losses import logits_and_grad
from advlab.models.zoo import mlp, small_cnn

MODEL_CHECKS = ["eval_mode", "deterministic", "logits_not_probabilities", "gradients_nonzero",
                "gradient_agrees_with_finite_differences"]
RESULT_CHECKS = ["accuracy_monotone_in_eps", "iterative_at_least_single_step",
                 "large_eps_reaches_zero", "whitebox_at_least_transfer"]
ADVICE_CHECKS = ["adaptive_attack", "worst_case_autoattack"]


class Wrapped(nn.Module):
    """``post(net(pre(x)))``: a zoo network with a hand-made defect before or after it."""

    def __init__(self, net: nn.Module, pre: Callable[[Tensor], Tensor] | None = None,
                 post: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.net, self.pre, self.post = net, pre, post

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(self.pre(x) if self.pre else x)
        return self.post(out) if self.post else out


def data(n: int = 64) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def run(model: Any, n: int = 64) -> dict[str, Check]:
    x, y = data(n)
    checks = model_checks(model, x, y, generator=torch.Generator().manual_seed(2))
    assert [c.name for c in checks] == MODEL_CHECKS
    return {c.name: c for c in checks}


def small_mlp(dropout: float = 0.0) -> nn.Module:
    return mlp(64, 10, hidden=(32,), dropout=dropout)


# ---------------------------------------------------------------------------------- the model


@pytest.mark.parametrize("build", [small_mlp, lambda: small_cnn((1, 8, 8), 10, (4, 8), 16)])
def test_ordinary_model_in_eval_mode_passes_every_model_check(build: Callable) -> None:
    checks = run(build().eval())
    assert all(c.passed for c in checks.values()), [c for c in checks.values() if not c.passed]
    assert checks["gradient_agrees_with_finite_differences"].severity == "warning"
    assert "0/64 samples" in checks["gradients_nonzero"].evidence


def test_saturated_clamped_logits_fail_gradients_nonzero() -> None:
    model = Wrapped(small_mlp(), post=lambda z: (z * 1e4).clamp(-10, 10)).eval()
    x, y = data()
    _, _, grad = logits_and_grad(model, x, y)
    zero = grad.flatten(1).abs().sum(1) == 0
    assert zero.float().mean() > 0.5  # the clamp really saturates: most gradients are exactly 0
    check = run(model)["gradients_nonzero"]
    assert not check.passed and check.severity == "error"
    assert "gradient masking" in check.meaning
    assert f"{int(zero.sum())}/64 samples" in check.evidence


def test_rounding_in_front_fails_gradients_and_finite_differences() -> None:
    checks = run(Wrapped(small_mlp(), pre=lambda x: torch.round(x * 4) / 4).eval())
    grads, fd = checks["gradients_nonzero"], checks["gradient_agrees_with_finite_differences"]
    assert not grads.passed and "gradient masking" in grads.meaning
    assert "64/64 samples (100%)" in grads.evidence
    assert not fd.passed and fd.severity == "warning" and "gradient masking" in fd.meaning


def test_straight_through_rounding_fails_only_finite_differences() -> None:
    # autograd sees the identity, but the function is piecewise constant: only the finite
    # difference can tell that the gradient is not the slope
    ste = Wrapped(small_mlp(), pre=lambda x: x + (torch.round(x * 4) / 4 - x).detach()).eval()
    checks = run(ste)
    assert checks["gradients_nonzero"].passed
    fd = checks["gradient_agrees_with_finite_differences"]
    assert not fd.passed and "gradient masking" in fd.meaning


def test_model_detached_from_its_input_fails_instead_of_raising() -> None:
    checks = run(Wrapped(small_mlp(), pre=lambda x: x.detach()).eval())
    grads = checks["gradients_nonzero"]
    assert not grads.passed and "autograd failed" in grads.evidence
    assert "gradient masking" in grads.meaning


def test_dropout_in_train_mode_fails_eval_mode_and_determinism() -> None:
    model = small_mlp(dropout=0.5).train()
    checks = run(model)
    assert not checks["eval_mode"].passed and "Dropout" in checks["eval_mode"].evidence
    assert not checks["deterministic"].passed
    assert "predictions changed" in checks["deterministic"].evidence
    assert model.training and all(m.training for m in model.modules())


def test_softmax_outputs_fail_and_log_softmax_is_a_warning() -> None:
    probabilities = run(nn.Sequential(small_mlp(), nn.Softmax(dim=1)).eval())
    check = probabilities["logits_not_probabilities"]
    assert not check.passed and check.severity == "error" and "softmax" in check.meaning
    log_probabilities = run(nn.Sequential(small_mlp(), nn.LogSoftmax(dim=1)).eval())
    check = log_probabilities["logits_not_probabilities"]
    assert check.passed and check.severity == "warning" and "log-probabilities" in check.meaning


def test_model_checks_leave_no_trace() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(16, 10))
    model.train()
    model[2].eval()  # a mixed state must come back exactly
    modes = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = data()
    x_before = x.clone()
    model_checks(model, x, y)
    assert torch.equal(x, x_before) and x.grad is None
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    model[2].train()  # batch norm in training mode: its running statistics must be restored
    model_checks(model, x, y)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_no_global_randomness_without_a_generator() -> None:
    model, (x, y) = small_mlp().eval(), data()
    before = torch.get_rng_state()
    first = model_checks(model, x, y)
    assert torch.equal(torch.get_rng_state(), before)
    assert first == model_checks(model, x, y)  # reproducible: a local generator seeded with 0


def test_plain_callable_and_bad_shapes() -> None:
    net = small_mlp().eval()
    checks = run(lambda x: net(x))
    assert checks["eval_mode"].passed and checks["eval_mode"].severity == "warning"
    assert all(c.passed for c in checks.values())
    x, y = data()
    with pytest.raises(ValueError, match=r"y of shape \(N,\)"):
        model_checks(net, x, y[:3])


def test_check_validates_severity_and_serialises() -> None:
    check = Check("eval_mode", True, "e", "m")
    assert check.as_dict() == {"name": "eval_mode", "passed": True, "evidence": "e",
                               "meaning": "m", "severity": "error"}
    json.dumps(check.as_dict())
    with pytest.raises(ValueError, match="severity"):
        Check("x", True, "e", "m", severity="fatal")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- the results


def row(attack: str, norm: str, eps: float | None, acc: float | None, *, name: str | None = None,
        success: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"attack": attack, "name": name or attack, "norm": norm, "eps": eps,
            "minimal_norm": eps is None, "robust_accuracy": acc, "success_rate": success,
            **extra}


def summary(*rows: dict[str, Any], n: int = 100, **extra: Any) -> dict[str, Any]:
    return {"config": {"n": n}, "dataset_card": {"n": n, "input_shape": [1, 8, 8]},
            "clean_accuracy": 0.9, "results": list(rows), "worst_case": [], "curves": {},
            **extra}


def checks_of(s: dict[str, Any]) -> dict[str, Check]:
    checks = result_checks(s)
    assert [c.name for c in checks] == RESULT_CHECKS
    return {c.name: c for c in checks}


def test_accuracy_rising_with_eps_is_named() -> None:
    check = checks_of(summary(row("pgd", "linf", 0.05, 0.35), row("pgd", "linf", 0.1, 0.41),
                              row("fgsm", "linf", 0.05, 0.5), row("fgsm", "linf", 0.1, 0.4))
                      )["accuracy_monotone_in_eps"]
    assert not check.passed and check.severity == "error"
    assert "pgd (linf): robust accuracy 0.41 at eps=0.1 > 0.35 at eps=0.05" in check.evidence
    assert "fgsm" not in check.evidence


def test_monotone_tolerates_one_sample_but_not_a_drift() -> None:
    one_sample = summary(row("pgd", "linf", 0.05, 0.35), row("pgd", "linf", 0.1, 0.36))
    assert checks_of(one_sample)["accuracy_monotone_in_eps"].passed  # 0.01 <= 1/100 + 0.005
    drift = summary(*(row("pgd", "linf", e, a) for e, a in [(0.1, 0.35), (0.2, 0.36),
                                                            (0.3, 0.37), (0.4, 0.38)]))
    check = checks_of(drift)["accuracy_monotone_in_eps"]
    assert not check.passed and "0.38 at eps=0.4 > 0.35 at eps=0.1" in check.evidence


def test_monotone_reads_worst_case_and_curves() -> None:
    s = summary(worst_case=[{"norm": "l2", "eps": 0.5, "robust_accuracy": 0.2},
                            {"norm": "l2", "eps": 1.0, "robust_accuracy": 0.3}],
                curves={"linf": {"eps": [0.0, 0.1], "series": {"deepfool": [0.9, 0.95]}}})
    check = checks_of(s)["accuracy_monotone_in_eps"]
    assert not check.passed
    assert "worst case (l2)" in check.evidence and "deepfool (linf)" in check.evidence


def test_single_step_beating_iterative_is_gradient_masking() -> None:
    s = summary(row("fgsm", "linf", 0.1, 0.2), row("pgd-40", "linf", 0.1, 0.5, name="pgd"),
                row("bim", "linf", 0.1, 0.1))
    check = checks_of(s)["iterative_at_least_single_step"]
    assert not check.passed and "gradient masking" in check.meaning
    assert "pgd-40 (linf, eps=0.1): robust accuracy 0.5 > fgsm 0.2" in check.evidence
    fine = checks_of(summary(row("fgsm", "linf", 0.1, 0.2), row("pgd", "linf", 0.1, 0.1)))
    assert fine["iterative_at_least_single_step"].passed
    assert fine["iterative_at_least_single_step"].severity == "error"
    nothing = checks_of(summary(row("pgd", "linf", 0.1, 0.1)))["iterative_at_least_single_step"]
    assert nothing.passed and nothing.severity == "warning" and "inconclusive" in nothing.evidence


def test_large_eps_uses_unbounded_minimal_norm_attacks() -> None:
    full = checks_of(summary(row("deepfool", "l2", None, 0.0, success=1.0)))
    assert full["large_eps_reaches_zero"].passed
    assert full["large_eps_reaches_zero"].severity == "error"
    assert "deepfool (l2, unbounded" in full["large_eps_reaches_zero"].evidence
    half = checks_of(summary(row("deepfool", "l2", None, 0.45, success=0.5)))
    assert not half["large_eps_reaches_zero"].passed
    assert "deepfool" in half["large_eps_reaches_zero"].evidence


def test_large_eps_without_unbounded_attacks() -> None:
    small = checks_of(summary(row("pgd", "linf", 0.1, 0.3)))["large_eps_reaches_zero"]
    assert small.passed and small.severity == "warning"
    assert "inconclusive" in small.evidence and "0.1" in small.evidence
    stuck = checks_of(summary(row("pgd", "linf", 0.1, 0.3), row("pgd", "linf", 0.5, 0.3)))
    assert not stuck["large_eps_reaches_zero"].passed
    broken = summary(row("pgd", "l2", 4.0, 0.3), row("fgsm", "l2", 4.0, 0.4),
                     worst_case=[{"norm": "l2", "eps": 4.0, "robust_accuracy": 0.01}])
    assert checks_of(broken)["large_eps_reaches_zero"].passed  # sqrt(64) / 2 = 4: large


def test_whitebox_against_transfer() -> None:
    none = checks_of(summary(row("pgd", "linf", 0.1, 0.3)))["whitebox_at_least_transfer"]
    assert none.passed and none.severity == "warning"
    assert "no transfer attack ran" in none.evidence
    s = summary(row("pgd", "linf", 0.1, 0.5), row("fgsm", "linf", 0.1, 0.6),
                row("substitute", "linf", 0.1, 0.2, knowledge="transfer"))
    checks = checks_of(s)
    check = checks["whitebox_at_least_transfer"]
    assert not check.passed and "gradient masking" in check.meaning
    assert "substitute" in check.evidence and "pgd" in check.evidence
    assert checks["accuracy_monotone_in_eps"].passed


def test_result_checks_skip_null_and_nan_and_accept_an_empty_summary() -> None:
    s = summary(row("pgd", "linf", 0.05, None), row("pgd", "linf", 0.1, math.nan),
                row("pgd", "linf", 0.2, 0.1))
    assert all(c.passed for c in result_checks(s))
    empty = result_checks({})
    assert [c.name for c in empty] == RESULT_CHECKS
    assert all(c.passed and c.severity == "warning" for c in empty)


def test_run_all_is_model_checks_then_result_checks() -> None:
    x, y = data(16)
    checks = run_all(small_mlp().eval(), x, y, summary(row("pgd", "linf", 0.1, 0.3)),
                     generator=torch.Generator().manual_seed(0))
    assert [c.name for c in checks] == MODEL_CHECKS + RESULT_CHECKS + ADVICE_CHECKS
    json.dumps([c.as_dict() for c in checks])

"""What a PGD/BIM step costs (one forward+backward, no checking forward), the deferred compaction,
the in-place projection, and the compiled and lower-precision gradient passes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from advlab import Domain, ThreatModel, accelerate, norms
from advlab.accelerate import gradient_pass
from advlab.attacks import bim, fgsm, pgd
from advlab.attacks.iterate import iterate
from advlab.losses import is_success, logits_and_grad
from advlab.models import QueryCounter, mlp

BOX = Domain(0.0, 1.0)


def problem(n: int = 24, dtype: torch.dtype = torch.float32, seed: int = 0
            ) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = mlp(10, 3, hidden=(16,)).to(dtype).eval()
    x = torch.rand(n, 10, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


class Calls(nn.Module):
    """Records, per call, the rows and whether the call was a gradient pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.shape[0], torch.is_grad_enabled() and x.requires_grad))
        return self.model(x)


@pytest.mark.parametrize("early_stop", [False, True])
def test_a_linf_pgd_step_costs_one_forward_backward_and_nothing_more(early_stop: bool) -> None:
    model, x, y = problem(32)
    threat = ThreatModel("linf", 0.3, BOX)
    calls = Calls(model)
    counter = QueryCounter(calls).eval()
    logits_and_grad(counter, x, y)  # the first pass measures its activations in two pieces
    counter.reset()
    calls.calls.clear()
    pgd(counter, x, y, threat, steps=40, early_stop=early_stop,
        generator=torch.Generator().manual_seed(0))
    grads = [rows for rows, g in calls.calls if g]
    forwards = [rows for rows, g in calls.calls if not g]
    assert counter.gradients == sum(grads)
    if not early_stop:
        assert grads == [len(x)] * 40
    else:  # the active batch only shrinks, and some samples were fooled on the way
        assert grads == sorted(grads, reverse=True) and grads[-1] < len(x)
    # one forward without gradient at most: the last iterate of the samples still active
    assert len(forwards) <= 1
    assert counter.forwards == counter.gradients + sum(forwards)
    if forwards:
        assert len(grads) == 40 and forwards[0] <= grads[-1]


def test_bim_and_fgsm_spend_no_forward_on_checking() -> None:
    model, x, y = problem(32)
    threat = ThreatModel("linf", 0.3, BOX)
    counter = QueryCounter(model).eval()
    logits_and_grad(counter, x, y)
    counter.reset()
    fgsm(counter, x, y, threat)
    assert counter.forwards == counter.gradients == len(x)
    counter.reset()
    bim(counter, x, y, threat, steps=10, early_stop=False)
    assert counter.gradients == 10 * len(x) and counter.forwards == 11 * len(x)


@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 0.8)])
@pytest.mark.parametrize("k", [2, 3, 7])
def test_deferred_compaction_gives_the_same_result_as_compacting_every_step(
        norm: str, eps: float, k: int) -> None:
    model, x, y = problem(40, torch.float64)
    threat = ThreatModel(norm, eps, BOX)  # type: ignore[arg-type]
    pass_ = gradient_pass(model)
    start = threat.random_point(x, torch.Generator().manual_seed(2), relax=True)
    runs = [iterate(pass_, x, y, None, threat, start.clone(), steps=15, step_size=eps / 8,
                    early_stop=True, coordinates_per_step=None, compact_every=every)
            for every in (1, k)]
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)
    x_adv, _, success = runs[0]
    assert 0 < int(success.sum()) < len(x)  # both kinds of samples were exercised
    with torch.no_grad():
        assert torch.equal(success, is_success(model(x_adv), y))


def test_iterate_never_writes_into_its_inputs() -> None:
    model, x, y = problem(16)
    threat = ThreatModel("linf", 0.2, BOX)
    before = x.clone()
    x_adv, _, _ = iterate(gradient_pass(model), x, y, None, threat, x, steps=5, step_size=0.05,
                          early_stop=False, coordinates_per_step=None)
    assert torch.equal(x, before) and not torch.equal(x_adv, x)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_project_into_out_equals_project(norm: str) -> None:
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(6, 12, generator=g)
    lo, hi = -torch.rand(6, 12, generator=g), torch.rand(6, 12, generator=g)
    expected = norms.project(delta, norm, 0.7, lower=lo, upper=hi)  # type: ignore[arg-type]
    out = torch.empty_like(delta)
    assert norms.project(delta, norm, 0.7, lower=lo, upper=hi, out=out) is out  # type: ignore[arg-type]
    assert_close(out, expected, rtol=0, atol=0)
    same = delta.clone()
    norms.project(same, norm, 0.7, lower=lo, upper=hi, out=same)  # type: ignore[arg-type]
    assert_close(same, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="out has shape"):
        norms.project(delta, norm, 0.7, out=torch.empty(3, 12))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_lower_precision_pass_is_close_and_successes_are_decided_in_float32(
        precision: str) -> None:
    model, x, y = problem(64)
    exact = logits_and_grad(model, x, y)
    low = gradient_pass(model, precision=precision)  # type: ignore[arg-type]
    assert not low.exact
    logits, values, grad = low(x, y)
    assert logits.dtype == values.dtype == grad.dtype == torch.float32
    assert torch.isfinite(grad).all()
    assert_close(logits, exact[0], rtol=0.05, atol=0.05)
    agree = (grad.sign() == exact[2].sign()).float().mean()
    assert agree > 0.9
    threat = ThreatModel("linf", 0.25, BOX)
    start = threat.random_point(x, torch.Generator().manual_seed(1), relax=True)
    x_adv, _, success = iterate(low, x, y, None, threat, start, steps=10, step_size=0.05,
                                early_stop=True, coordinates_per_step=None)
    with torch.no_grad():
        assert torch.equal(success, is_success(model(x_adv), y))
    assert threat.contains(x_adv, x).all()
    adv = pgd(model, x, y, threat, steps=10, precision=precision,  # type: ignore[arg-type]
              generator=torch.Generator().manual_seed(1))
    assert threat.contains(adv, x).all()


def test_fp16_rows_whose_gradient_overflows_are_recomputed_in_float32(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, x, y = problem(8)
    monkeypatch.setattr(accelerate, "FP16_LOSS_SCALE", 1e30)  # overflows float16 in the backward
    logits_and_grad(model, x, y)  # measured: the next call runs the fp16 pass itself
    _, _, grad = gradient_pass(model, precision="fp16")(x, y)
    assert torch.isfinite(grad).all()
    assert_close(grad.sign(), logits_and_grad(model, x, y)[2].sign())


def test_bad_precision_and_compile_values_raise() -> None:
    model = problem(2)[0]
    with pytest.raises(ValueError, match="precision must be one of"):
        gradient_pass(model, precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compile must be a bool"):
        gradient_pass(model, compile="yes")  # type: ignore[arg-type]


def test_buckets_are_powers_of_two_from_eight() -> None:
    assert [accelerate.bucket(n) for n in (1, 8, 9, 16, 17, 100, 256)] == \
        [8, 8, 16, 16, 32, 128, 256]
    v = torch.arange(6.0).reshape(3, 2)
    padded = accelerate._pad(v, 8)
    assert padded.shape == (8, 2) and torch.equal(padded[:3], v)
    assert torch.equal(padded[3:], v[-1:].expand(5, 2))


# --------------------------------------------------------------------------- compiled passes


@pytest.mark.slow
def test_the_compiled_pass_and_pgd_equal_the_eager_ones_within_float_tolerance() -> None:
    model, x, y = problem(32, torch.float64)
    counter = QueryCounter(model)
    logits_and_grad(model, x, y)  # measures the activations: the next passes are compiled
    for rows in (32, 20, 7):  # a dynamic batch
        ref = logits_and_grad(model, x[:rows], y[:rows], loss="margin")
        got = gradient_pass(counter, "margin", compile=True)(x[:rows], y[:rows])
        for a, b in zip(ref, got, strict=True):
            assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert counter.gradients == counter.forwards == 32 + 20 + 7
    threat = ThreatModel("linf", 0.2, BOX)
    runs = [pgd(model, x, y, threat, steps=10, compile=c,
                generator=torch.Generator().manual_seed(0)) for c in (False, True)]
    assert_close(runs[1], runs[0], rtol=0, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_passes_equal_the_cpu_ones(compile: bool) -> None:
    model, x, y = problem(20)
    ref = logits_and_grad(model, x, y)
    got = gradient_pass(model.cuda(), compile=compile)(x.cuda(), y.cuda())
    for a, b in zip(ref, got, strict=True):
        assert_close(b.cpu(), a, rtol=1e-4, atol=1e-5)
    threat = ThreatModel("linf", 0.2, BOX)
    adv = pgd(model, x.cuda(), y.cuda(), threat, steps=10, compile=compile,
              generator=torch.Generator("cuda").manual_seed(0))
    assert threat.contains(adv.cpu(), x).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_lower_precision_pgd_stays_in_the_threat(precision: str) -> None:
    model, x, y = problem(20)
    threat = ThreatModel("linf", 0.2, BOX)
    adv = pgd(model.cuda(), x.cuda(), y.cuda(), threat, steps=10,
              precision=precision,  # type: ignore[arg-type]
              generator=torch.Generator("cuda").manual_seed(0))
    assert threat.contains(adv.cpu(), x).all() and not math.isnan(float(adv.sum()))

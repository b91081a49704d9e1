"""Explanations of a linear model against their closed forms.

The model is ``logits = [-f, f]`` with ``f(x) = w·x + b``. Then the gradient of the "positive"
logit is ``w`` everywhere; integrated gradients from a zero baseline are exactly ``x ⊙ w`` for
any number of steps (the integrand is constant); SHAP values (interventional, background ``B``)
are ``w ⊙ (x - E_B[x])``; and permuting a feature ``i`` that is independent of the others
changes the loss by an amount that grows with ``|w_i|·std(x_i)`` and is exactly 0 when
``w_i = 0``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlab.explain import (
    deeplift_shap,
    gradient_shap,
    integrated_gradients,
    model_parts,
    saliency,
    shapley_sampling,
)

W = torch.tensor([2.0, -1.0, 0.5, 0.0, -3.0])
B = 0.25


class Linear2(nn.Module):
    """``[-f, f]`` with ``f = w·x + b``: class 1 is "f > 0"."""

    def __init__(self, w: torch.Tensor = W, b: float = B) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(w[None])
            self.lin.bias.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.lin(x)
        return torch.cat([-f, f], 1)


def f(x: torch.Tensor) -> torch.Tensor:
    return x @ W + B


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(16, 5, generator=torch.Generator().manual_seed(1)) * 2


@pytest.mark.parametrize(("target", "sign"), [(1, 1.0), (0, -1.0)])
def test_saliency_is_w(x, target, sign) -> None:
    model = Linear2()
    torch.testing.assert_close(saliency(model, x, target), sign * W.expand_as(x))
    torch.testing.assert_close(saliency(model, x, target, mode="abs"), W.abs().expand_as(x))
    torch.testing.assert_close(saliency(model, x, target, mode="input_x_gradient"),
                               sign * x * W)


@pytest.mark.parametrize("steps", [1, 7, 32])
def test_integrated_gradients_zero_baseline_is_x_times_w(x, steps) -> None:
    ig = integrated_gradients(Linear2(), x, 1, steps=steps)
    torch.testing.assert_close(ig, x * W, rtol=1e-5, atol=1e-5)


def test_integrated_gradients_completeness_linear_and_nonlinear(x) -> None:
    baseline = torch.full((5,), 0.3)
    ig = integrated_gradients(Linear2(), x, 1, baseline=baseline, steps=4)
    torch.testing.assert_close(ig.sum(1), f(x) - f(baseline[None]).expand(len(x)), rtol=1e-5,
                               atol=1e-5)
    # a smooth non-linear network: completeness up to the quadrature error, which shrinks
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    t = torch.randint(0, 3, (len(x),), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        delta = net(x).gather(1, t[:, None])[:, 0] - net(torch.zeros(1, 5))[0, t]
    errors = [(integrated_gradients(net, x, t, steps=s).sum(1) - delta).abs().max()
              for s in (2, 64)]
    assert errors[1] < 1e-4 * (1 + delta.abs().max())
    assert errors[1] < errors[0]


def test_deeplift_shap_is_exact_and_complete(x) -> None:
    bg = torch.randn(40, 5, generator=torch.Generator().manual_seed(5)) + 1.0
    phi = deeplift_shap(Linear2(), x, 1, background=bg)
    torch.testing.assert_close(phi, W * (x - bg.mean(0)), rtol=1e-4, atol=1e-5)
    # completeness on a ReLU network: sum = f(x) - mean_b f(b) (DeepLIFT's summation-to-delta)
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 2))
    phi = deeplift_shap(net, x, 1, background=bg)
    with torch.no_grad():
        delta = net(x)[:, 1] - net(bg)[:, 1].mean()
    torch.testing.assert_close(phi.sum(1), delta, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["shapley_sampling", "gradient_shap"])
def test_sampled_shap_of_linear_model_is_w_times_centred_x(x, method) -> None:
    gen = torch.Generator().manual_seed(0)
    bg = torch.randn(500, 5, generator=gen) * torch.tensor([1.0, 2.0, 0.5, 1.0, 1.5]) + 0.7
    n = 200
    fn = shapley_sampling if method == "shapley_sampling" else gradient_shap
    phi = fn(Linear2(), x, 1, background=bg, n_samples=n, generator=gen)
    expected = W * (x - bg.mean(0))
    # each estimate averages n terms w_i (x_i - b_i): standard error |w_i| std(b_i) / sqrt(n)
    se = W.abs() * bg.std(0) / math.sqrt(n)
    z = ((phi - expected).abs() / se.clamp_min(1e-12))[:, W != 0]
    assert float(z.max()) < 5.0, z.max()
    assert torch.equal(phi[:, W == 0], torch.zeros_like(phi[:, W == 0]))
    # the sampling error is noise, not a bias: it is centred
    assert abs(float((phi - expected)[:, W != 0].mean() / se[W != 0].mean())) < 1.0


def _linear_data(n: int = 4000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    std = torch.tensor([1.0, 1.2, 3.0, 1.0, 0.2])
    x = torch.randn(n, 5, generator=gen) * std
    y = (torch.rand(n, generator=gen) < torch.sigmoid(f(x))).long()
    return x, y, std


@pytest.mark.parametrize("loss", ["cross_entropy", "1-auc"])
def test_permutation_importance_zero_weight_and_order(loss) -> None:
    x, y, std = _linear_data()
    imp = model_parts(Linear2(), x, y, loss=loss, permutations=5,
                      generator=torch.Generator().manual_seed(0))
    assert imp.drops.shape == (5, 5)
    # |w|·std = 2, 1.2, 1.5, 0, 0.6: the zero-weight feature changes nothing, exactly
    assert torch.equal(imp.drops[:, 3], torch.zeros(5, dtype=imp.drops.dtype))
    strength = W.abs() * std
    expected = sorted(range(5), key=lambda i: -float(strength[i]))
    assert expected == [0, 2, 1, 4, 3]
    assert imp.ranking() == expected, imp.mean
    assert float(imp.mean[4]) > 5 * float(imp.std[4])  # the weakest real feature still counts

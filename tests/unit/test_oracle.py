"""The Oracle: what a black-box attacker sees, exact query accounting, the budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advlab.attacks.oracle import Oracle, QueryBudgetExceeded, as_oracle, log_probabilities
from spies import Spy


def counting(features: int = 6, classes: int = 3) -> Spy:
    """A small seeded MLP with dropout (so that its mode matters), counting its rows and calls."""
    torch.manual_seed(0)
    return Spy(nn.Sequential(nn.Flatten(), nn.Linear(features, 16), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(16, classes)))


def test_outputs_per_mode() -> None:
    model = counting().eval()
    x = torch.rand(5, 6)
    with torch.no_grad():
        logits = model(x)
    labels = Oracle(model)(x)
    assert labels.dtype == torch.long and torch.equal(labels, logits.argmax(1))
    probs = Oracle(model, output="probabilities")(x)
    torch.testing.assert_close(probs, logits.softmax(1))
    torch.testing.assert_close(Oracle(model, output="logits")(x), logits)
    assert torch.equal(Oracle(model, output="probabilities").labels(x), labels)
    # margins of log-probabilities are margins of logits
    lp = log_probabilities(probs, "probabilities")
    torch.testing.assert_close(lp[:, 0] - lp[:, 1], logits[:, 0] - logits[:, 1])


def test_no_gradient_reaches_the_model() -> None:
    model = counting()
    oracle = Oracle(model, output="logits")
    x = torch.rand(4, 6, requires_grad=True)
    with torch.enable_grad():
        out = oracle(x)
    assert not out.requires_grad and out.grad_fn is None
    assert model.grad_enabled == [False]
    with pytest.raises(RuntimeError):
        torch.autograd.grad(out.sum(), x)
    assert all(p.grad is None for p in model.parameters())
    assert not hasattr(oracle, "parameters")  # not a module: no door to the weights


def test_runs_in_eval_mode_and_restores_the_mode() -> None:
    model = counting().train()
    x = torch.rand(8, 6)
    oracle = Oracle(model, output="logits")
    assert torch.equal(oracle(x), oracle(x))  # dropout off
    assert model.training and all(m.training for m in model.modules())


def test_query_accounting_is_exact() -> None:
    model = counting().eval()
    oracle = Oracle(model, output="probabilities", num_samples=5)
    g = torch.Generator().manual_seed(0)
    for size in (5, 3, 1, 7, 2):
        idx = torch.randint(0, 5, (size,), generator=g)
        oracle(torch.rand(size, 6, generator=g), idx)
    oracle.labels(torch.rand(4, 6))  # rows without a sample index count in the total only
    assert oracle.queries == model.rows == 22
    assert oracle.calls == model.calls == 6
    assert oracle.per_sample is not None and int(oracle.per_sample.sum()) == 18
    oracle.reset()
    assert oracle.queries == 0 and int(oracle.per_sample.sum()) == 0


def test_budget_refuses_a_call_before_evaluating_it() -> None:
    model = counting().eval()
    oracle = Oracle(model, max_queries=10, num_samples=3)
    oracle(torch.rand(6, 6))
    assert oracle.remaining == 4
    with pytest.raises(QueryBudgetExceeded, match="query budget of 10 exhausted: 6 queries spent, "
                       "a call for 5 more was refused") as info:
        oracle(torch.rand(5, 6))
    assert (info.value.queries, info.value.budget, info.value.requested) == (6, 10, 5)
    assert model.rows == 6 == oracle.queries  # the refused call was not evaluated
    oracle(torch.rand(4, 6))
    assert oracle.remaining == 0 and model.rows == 10


def test_bad_arguments_raise_clear_errors() -> None:
    model = counting()
    with pytest.raises(ValueError, match="output must be one of"):
        Oracle(model, output="scores")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queries must be >= 0"):
        Oracle(model, max_queries=-1)
    with pytest.raises(ValueError, match="already an Oracle"):
        Oracle(Oracle(model))
    oracle = Oracle(model, num_samples=3)
    with pytest.raises(ValueError, match=r"index must be int64 of shape \(2,\)"):
        oracle(torch.rand(2, 6), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="x must be a tensor"):
        oracle(torch.rand(6))
    with pytest.raises(ValueError, match="must return logits"):
        Oracle(lambda x: x.sum(1))(torch.rand(2, 6))
    with pytest.raises(ValueError, match="square is score-based"):
        as_oracle(Oracle(model), "square", "probabilities", 3)
    with pytest.raises(ValueError, match="num_samples=3 samples, but x has 5"):
        as_oracle(Oracle(model, num_samples=3), "hopskipjump", "labels", 5)

"""Row chunking of forward+backward passes (advlab.models.batching) and its use by the attacks."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from advlab import Domain, ThreatModel
from advlab.attacks import carlini_wagner_l2, deepfool, fgsm, jsma, pgd
from advlab.losses import logits_and_grad
from advlab.models import batching


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3)).double().eval()


def data(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (n,), generator=g))


@given(rows=st.integers(1, 400), chunks=st.integers(1, 400))
def test_row_slices_cover_the_rows_in_near_equal_contiguous_pieces(rows: int, chunks: int) -> None:
    slices = batching.row_slices(rows, chunks)
    covered = [i for s in slices for i in range(rows)[s]]
    assert covered == list(range(rows))
    sizes = [s.stop - s.start for s in slices]
    assert len(slices) == min(rows, chunks) and max(sizes) - min(sizes) <= 1


def test_the_first_gradient_call_measures_the_saved_activations_per_row() -> None:
    model, (x, y) = cnn(), data()
    assert batching.bytes_per_row(model, x) is None and batching.chunk_count(model, x) == 0
    logits_and_grad(model, x, y)
    per_row = batching.bytes_per_row(model, x)
    # at least the input and the 4×8×8 ReLU output that the backward keeps, in float64
    assert per_row is not None and per_row >= 8 * (8 * 8 + 4 * 8 * 8)
    # weights (1.3 KB here) are not per-row activations: a row costs well under 10 KB
    assert per_row < 10_000
    assert batching.chunk_count(model, x) == 1  # 12 rows × ~3 KB is far under CHUNK_BYTES
    other = torch.rand(4, 1, 16, 16, dtype=torch.float64)
    assert batching.bytes_per_row(model, other) is None  # another row shape is measured anew


def test_parameters_saved_for_the_backward_are_not_counted_as_activations() -> None:
    # the convolution saves its weight, of shape (16, 64, 5, 5): as many rows as the 16-row probe
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, batching.PROBE_ROWS, 5), nn.Flatten()).eval()
    x, y = torch.rand(40, 64, 5, 5), torch.randint(0, batching.PROBE_ROWS, (40,))
    logits_and_grad(model, x, y)
    per_row = batching.bytes_per_row(model, x)
    # the input row (6,400 B), the log-softmax row (64 B), the label (8 B), and some slack; with
    # the weight counted it would be 6,400 B more
    assert per_row is not None and 6400 <= per_row <= 7000


def test_the_first_call_measures_on_its_first_rows_and_splits_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = data(40)
    monkeypatch.setattr(batching, "CHUNK_BYTES", float("inf"))
    whole = logits_and_grad(cnn(), x, y)
    monkeypatch.setattr(batching, "CHUNK_BYTES", 1.0)  # one row a chunk once measured
    model = cnn()  # the same weights, not measured yet
    calls: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    split = logits_and_grad(model, x, y)
    handle.remove()
    assert calls == [batching.PROBE_ROWS] + [1] * (40 - batching.PROBE_ROWS)
    for a, b in zip(whole, split, strict=True):
        assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", [False, True])
def test_a_split_pass_gives_the_same_logits_losses_and_gradients(
        monkeypatch: pytest.MonkeyPatch, target: bool) -> None:
    model, (x, y) = cnn(), data(13)
    t = (y + 1) % 3 if target else None
    whole = logits_and_grad(model, x, y, loss="margin", target=t)  # measures; one piece
    per_row = batching.bytes_per_row(model, x)
    assert per_row is not None
    monkeypatch.setattr(batching, "CHUNK_BYTES", per_row * 4)  # 4 rows a chunk: 4 pieces
    assert batching.chunk_count(model, x) == 4
    x_before = x.clone()
    split = logits_and_grad(model, x, y, loss="margin", target=t)
    for a, b in zip(whole, split, strict=True):
        assert_close(b, a, rtol=1e-12, atol=1e-12)
    assert torch.equal(x, x_before)
    assert all(p.grad is None for p in model.parameters())
    assert_close(batching.forward(model, x), model(x).detach(), rtol=1e-12, atol=1e-12)


def test_attacks_give_the_same_result_whether_or_not_the_batch_is_split(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, (x, y) = cnn(), data(10)
    linf = ThreatModel("linf", 0.1, Domain(0.0, 1.0))
    l2 = ThreatModel("l2", math.inf, Domain(0.0, 1.0))
    l0 = ThreatModel("l0", 12, Domain(0.0, 1.0))
    target = (y + 1) % 3
    runs = {}
    for limit in (float("inf"), 1.0):  # no split, then one row a chunk
        monkeypatch.setattr(batching, "CHUNK_BYTES", limit)
        seeded = torch.Generator().manual_seed(3)
        runs[limit] = (fgsm(model, x, y, linf),
                       pgd(model, x, y, linf, steps=5, random_start=False, early_stop=False),
                       pgd(model, x, y, linf, steps=5, generator=seeded),
                       deepfool(model, x, y, l2, steps=10),
                       carlini_wagner_l2(model, x, y, l2, steps=20, binary_search_steps=2),
                       jsma(model, x, y, l0, target=target, gamma=0.2))
        if limit == 1.0:
            assert batching.chunk_count(model, x) == len(x)
    for a, b in zip(runs[float("inf")], runs[1.0], strict=True):
        assert_close(b, a, rtol=1e-10, atol=1e-10)


class Unreferenceable:
    """A callable model that cannot be weakly referenced (no ``__weakref__`` slot)."""

    __slots__ = ("net",)

    def __init__(self, net: nn.Module) -> None:
        self.net = net

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_a_model_that_cannot_be_weakly_referenced_is_measured_at_every_call() -> None:
    net, (x, y) = cnn(), data()
    model = Unreferenceable(net)
    first = logits_and_grad(model, x, y)
    assert batching.chunk_count(model, x) == 0  # nothing cached, nothing broken
    second = logits_and_grad(model, x, y)
    for a, b in zip(first, second, strict=True):
        assert_close(b, a, rtol=0, atol=0)


def test_tensors_off_the_cpu_and_modules_in_training_mode_are_never_split(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, (x, y) = cnn(), data()
    logits_and_grad(model, x, y)
    monkeypatch.setattr(batching, "CHUNK_BYTES", 1.0)
    assert batching.chunk_count(model, x) == len(x)  # measured, and split in eval mode
    assert batching.chunk_count(model.train(), x) == 1  # batch norm would mix the rows
    model.eval()
    assert batching.chunk_count(model, x.to("meta")) == 1
    assert batching.chunk_count(model, x[:1]) == 1  # one row: nothing to split

"""Threshold calibration under distribution shift (advlab.explain.calibration_shift, split_rows).

A detector whose score is the first feature makes the answer known: calibrated for 5 % FPR on
N(0, 1) scores, it flags 5 % of fresh N(0, 1) rows (up to binomial error) and
P(Z > 1.645 - 0.5) = 12.6 % of rows shifted by +0.5, the size of the NSL-KDD gap.
"""

from __future__ import annotations

import math

import pytest
import torch

from advlab.defenses.detection import Detector
from advlab.explain import calibration_shift, split_rows


class FirstFeature(Detector):
    def fit(self, clean: torch.Tensor, adversarial: torch.Tensor) -> FirstFeature:
        return self

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0].double()


def normal(n: int, shift: float, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)) + shift


def test_calibration_hits_its_target_on_rows_drawn_alike_and_misses_it_under_shift() -> None:
    n = 20000
    out = calibration_shift(FirstFeature(), normal(n, 0.0, 0),
                            {"alike": normal(n, 0.0, 1), "shifted": normal(n, 0.5, 2)}, fpr=0.05)
    se = math.sqrt(0.05 * 0.95 / n)
    assert out["calibration_fpr"] <= 0.05
    assert out["fpr:alike"] == pytest.approx(0.05, abs=6 * se)  # both samples vary
    shifted = 1 - 0.5 * (1 + math.erf((1.6449 - 0.5) / math.sqrt(2)))
    assert shifted == pytest.approx(0.126, abs=1e-3)
    assert out["fpr:shifted"] == pytest.approx(shifted, abs=6 * se + 0.005)
    assert out["threshold"] == pytest.approx(1.6449, abs=0.05)  # the N(0, 1) 95 % quantile


def test_calibrating_on_a_half_of_the_shifted_data_restores_the_target() -> None:
    x = normal(20000, 0.5, 3)
    cal, rest = split_rows(len(x), 0.5, generator=torch.Generator().manual_seed(0))
    out = calibration_shift(FirstFeature(), x[cal], {"rest": x[rest]}, fpr=0.05)
    assert out["fpr:rest"] == pytest.approx(0.05, abs=6 * math.sqrt(0.05 * 0.95 / 10000))


def test_split_rows_is_a_seeded_partition() -> None:
    a, b = split_rows(101, 0.3, generator=torch.Generator().manual_seed(1))
    assert a.numel() == 30 and b.numel() == 71
    assert torch.equal(torch.sort(torch.cat([a, b])).values, torch.arange(101))
    again = split_rows(101, 0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again[0], a)
    assert not torch.equal(split_rows(101, 0.3, generator=torch.Generator().manual_seed(2))[0], a)
    with pytest.raises(ValueError, match="fraction"):
        split_rows(10, 1.0, generator=torch.Generator())
    with pytest.raises(ValueError, match="held_out is empty"):
        calibration_shift(FirstFeature(), normal(10, 0, 0), {})

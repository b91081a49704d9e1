"""Projection cost as a ratio to one forward+backward pass of the small CNN, in one run.

Usage: .venv/bin/python benchmarks/bench_projections.py [--batch 256] [--repeats 30]

Projects a batch of 256 perturbations of shape 3×32×32 onto the L∞, L2 and L1 balls (and onto
ball ∩ [0, 1] box through ThreatModel.project) and times one forward+backward pass of
advlab.models.small_cnn((3, 32, 32), 10) on the same batch. Times are medians over the repeats,
interleaved so that machine noise hits every row alike; the figure to quote is the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from advlab import ThreatModel, norms
from advlab.models import small_cnn


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    delta = torch.randn(x.shape, generator=gen) * 0.1  # L2 ≈ 5.5, L1 ≈ 245: all outside
    x_adv = (x + delta)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = small_cnn((3, 32, 32), 10).eval()

    def forward_backward() -> None:
        xr = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), y)
        torch.autograd.grad(loss, xr)

    eps = {"linf": 8 / 255, "l2": 0.5, "l1": 10.0}
    cases: dict[str, Callable[[], object]] = {"forward+backward (small_cnn)": forward_backward}
    for p, e in eps.items():
        cases[f"norms.project {p} (eps={e:.4g})"] = lambda p=p, e=e: norms.project(delta, p, e)
    for p, e in eps.items():
        threat = ThreatModel(p, e)  # type: ignore[arg-type]
        cases[f"ThreatModel.project {p} ∩ [0,1] box"] = lambda t=threat: t.project(x_adv, x)
    for fn in cases.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(_timed(fn))
    base = statistics.median(times["forward+backward (small_cnn)"])
    print(f"batch {args.batch}×3×32×32, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print("| operation | median ms | ratio to forward+backward |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med * 1e3:.2f} | {med / base:.3f} |")


if __name__ == "__main__":
    main()

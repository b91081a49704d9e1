"""Shared helpers of the attack benchmarks (bench_attacks.py, compare.py): the two trained models,
the gradient floor (one forward+backward of a model), interleaved timing and markdown tables.

Not a module of advlab: the benchmarks import it as a sibling file (``sys.path`` holds the
script's folder when a script is run as ``python benchmarks/<name>.py``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from advlab.data import Dataset, load
from advlab.models import train_classifier

DEFAULT_NSL_KDD = Path("../shared/data/nsl-kdd")


@dataclass
class Subject:
    """A trained model and the clean samples it is attacked on."""

    name: str  # "digits" or "nsl-kdd"
    model: nn.Module
    dataset: Dataset
    x: Tensor
    y: Tensor
    test_accuracy: float

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def take(self, n: int) -> tuple[Tensor, Tensor]:
        """The first ``n`` test samples, the test set repeated when it is shorter than ``n``."""
        x, y = self.dataset.x_test, self.dataset.y_test
        if n > len(x):
            reps = -(-n // len(x))
            x, y = x.repeat(reps, *([1] * (x.dim() - 1))), y.repeat(reps)
        return x[:n].contiguous(), y[:n].contiguous()


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the report."""
    print(message, file=sys.stderr, flush=True)


def digits_subject(n: int) -> Subject:
    """The digits small_cnn (28×28 upsampled digits, 5 epochs, lr 2e-3, batch 64, no validation
    split) and its first ``n`` test images (the 450 test images repeated if ``n > 450``)."""
    ds = load("digits", upsample=True)
    trained = train_classifier(ds, "small_cnn", epochs=5, lr=2e-3, batch_size=64,
                               val_fraction=0, progress=False)
    subject = Subject("digits", trained.model.eval(), ds, ds.x_test, ds.y_test,
                      trained.metrics["test_accuracy"])
    subject.x, subject.y = subject.take(n)
    return subject


def nsl_kdd_subject(path: Path, n: int) -> Subject | None:
    """The NSL-KDD MLP (3 epochs) and its first ``n`` test rows; ``None`` (with a message on
    stderr) when the data folder is absent."""
    if not path.is_dir():
        log(f"NSL-KDD skipped: {path} is not a directory (pass --nsl-kdd DIR)")
        return None
    ds = load("nsl-kdd", path)
    trained = train_classifier(ds, "mlp", epochs=3, progress=False)
    subject = Subject("nsl-kdd", trained.model.eval(), ds, ds.x_test, ds.y_test,
                      trained.metrics["test_accuracy"])
    subject.x, subject.y = subject.take(n)
    return subject


def forward_backward(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    """One forward+backward pass: ``torch.autograd.grad`` of the summed CE w.r.t. the input."""

    def run() -> None:
        xr = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), y, reduction="sum")
        torch.autograd.grad(loss, xr)

    return run


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(cases: dict[str, Callable[[], object]], repeats: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """Run every case ``warmup`` times, then ``repeats`` rounds of one run of each case in turn,
    so that machine noise hits every case alike. Returns the seconds of each run per case."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn)[0])
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A markdown table; ``align`` has one ``l`` or ``r`` per column (default: first left)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 3) -> str:
    if value != value:  # NaN
        return "–"
    return f"{value:.{digits}f}"


def revision() -> str:
    """The advlab commit measured, and whether src/ has uncommitted changes (read-only git)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "advlab commit unknown"
    return f"advlab commit {head}" + (" + uncommitted changes in src/" if dirty else "")


def environment() -> str:
    return (f"{revision()}; torch {torch.__version__}, {torch.get_num_threads()} threads "
            f"(torch.get_num_threads(), default), Python {sys.version.split()[0]}")

"""Throughput of the robust-accuracy evaluation on whole test sets: PGD-40 L∞ with early stopping,
advlab against torchattacks, in samples per second.

Usage: .venv/bin/python benchmarks/throughput.py [--nsl-kdd DIR] [--mnist DIR] [--limit N]

* NSL-KDD: the MLP of ``benchmarks/common.py`` (3 epochs), every one of the 22,544 KDDTest+
  records, batches of 1024, eps 0.05;
* MNIST: ``small_cnn`` trained on the 10,000 training images (3 epochs, lr 2e-3, batch 64), every
  one of the 10,000 test images, batches of 256, eps 0.1.

Both libraries get the box [0, 1] (as in ``compare.py``), 40 steps of ``2.5·eps/40`` and a random
start. The libraries alternate batch by batch (advlab first on even batches), so that machine
noise hits both alike; the figures are the summed times over the set, and the robust accuracy
of each (scored by :func:`advlab.evaluation.score`). ``--limit`` caps the samples (a smoke run).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import DEFAULT_NSL_KDD, environment, log, table
from torch import Tensor, nn

from advlab import Domain, ThreatModel
from advlab.attacks import pgd
from advlab.data import Dataset, load
from advlab.evaluation import score
from advlab.models import train_classifier

DEFAULT_MNIST = Path("../shared/data/mnist")


def run(name: str, model: nn.Module, x: Tensor, y: Tensor, eps: float, batch: int) -> list[str]:
    import torchattacks as ta

    threat = ThreatModel("linf", eps, Domain(0.0, 1.0))
    alpha = 2.5 * eps / 40
    ref = ta.PGD(model, eps=eps, alpha=alpha, steps=40, random_start=True)
    seconds = {"advlab": 0.0, "torchattacks": 0.0}
    robust = {"advlab": 0, "torchattacks": 0}
    ours = {"advlab": lambda xb, yb, g: pgd(model, xb, yb, threat, steps=40, step_size=alpha,
                                            generator=g),
            "torchattacks": lambda xb, yb, g: ref(xb, yb)}
    batches = list(zip(x.split(batch), y.split(batch), strict=True))
    for b, (xb, yb) in enumerate(batches):
        order = list(ours) if b % 2 == 0 else list(ours)[::-1]
        for lib in order:
            gen = torch.Generator().manual_seed(b)
            start = time.perf_counter()
            x_adv = ours[lib](xb, yb, gen)
            seconds[lib] += time.perf_counter() - start
            s = score(model, xb, yb, x_adv, threat)
            robust[lib] += int((s.clean_correct & ~s.success).sum())
        log(f"  {name}: batch {b + 1}/{len(batches)}")
    n = len(x)
    return [[name, lib, str(n), f"{seconds[lib]:.1f}", f"{n / seconds[lib]:.0f}",
             f"{seconds['torchattacks'] / seconds[lib]:.2f}", f"{100 * robust[lib] / n:.1f} %"]
            for lib in ours]


def trained(ds: Dataset, arch: str, **kw: object) -> nn.Module:
    torch.manual_seed(0)
    return train_classifier(ds, arch, progress=False, **kw).model.eval()  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST, metavar="DIR")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--only", default="nsl-kdd,mnist")
    args = parser.parse_args()
    torch.manual_seed(0)  # torchattacks draws its random starts from the global RNG
    only = args.only.split(",")
    rows = []
    if "nsl-kdd" in only:
        log("training the NSL-KDD MLP ...")
        ds = load("nsl-kdd", args.nsl_kdd)
        model = trained(ds, "mlp", epochs=3)
        rows += run("NSL-KDD KDDTest+, MLP", model, ds.x_test[:args.limit],
                    ds.y_test[:args.limit], 0.05, 1024)
    if "mnist" in only:
        log("training the MNIST small_cnn ...")
        ds = load("mnist", args.mnist)
        model = trained(ds, "small_cnn", epochs=3, lr=2e-3, batch_size=64, val_fraction=0)
        rows += run("MNIST t10k, small_cnn", model, ds.x_test[:args.limit],
                    ds.y_test[:args.limit], 0.1, 256)
    print(f"# PGD-40 L∞ with early stopping on whole test sets\n\n{environment()}\n")
    print(table(["data, model", "library", "samples", "seconds", "samples / s",
                 "torchattacks time ÷ this", "robust accuracy"], rows, "llrrrrr"))


if __name__ == "__main__":
    main()

"""The gradient passes of PGD: what a step costs (counts), and the opt-in compiled and
lower-precision passes (strength and speed) against eager float32.

Usage: .venv/bin/python benchmarks/bench_passes.py [--parts counts,strength,speed]
                                                   [--nsl-kdd DIR] [--repeats 5]
                                                   [--only digits,nsl-kdd]

* ``counts``: PGD-40 L∞ through a :class:`~advlab.models.QueryCounter`: forwards and gradients
  per sample, with and without early stopping (no timing).
* ``strength``: robust accuracy of PGD-40 L∞ with early stopping for ``precision`` fp32, bf16 and
  fp16 (and ``compile=True``), over 3 random starts, scored in float32 by
  :func:`advlab.evaluation.score` (no timing).
* ``speed``: PGD-40 L∞ with early stopping, eager float32 against each opt-in pass, interleaved
  medians; the compiled pass's first call (its compilation) is timed apart. Run it under the
  benchmark lock.

The models and samples are those of ``compare.py`` (digits small_cnn, 256 images, eps 0.1; NSL-KDD
MLP, 1024 records, eps 0.05; box [0, 1]).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from common import (
    DEFAULT_NSL_KDD,
    Subject,
    digits_subject,
    environment,
    interleaved,
    log,
    median,
    nsl_kdd_subject,
    table,
)

from advlab import Domain, ThreatModel
from advlab.accelerate import native
from advlab.attacks import pgd
from advlab.evaluation import score
from advlab.losses import logits_and_grad
from advlab.models import QueryCounter

EPS = {"digits": 0.1, "nsl-kdd": 0.05}
PASSES: dict[str, dict[str, Any]] = {"eager fp32": {}, "compile=True": {"compile": True},
                                     "precision=bf16": {"precision": "bf16"},
                                     "precision=fp16": {"precision": "fp16"}}


def attack(subject: Subject, seed: int, early_stop: bool = True, **passes: Any) -> torch.Tensor:
    threat = ThreatModel("linf", EPS[subject.name], Domain(0.0, 1.0))
    return pgd(subject.model, subject.x, subject.y, threat, steps=40, early_stop=early_stop,
               generator=torch.Generator().manual_seed(seed), **passes)


def counts(subject: Subject) -> list[list[str]]:
    threat = ThreatModel("linf", EPS[subject.name], Domain(0.0, 1.0))
    counter = QueryCounter(subject.model).eval()
    logits_and_grad(counter, subject.x, subject.y)  # measure the activations once
    rows, n = [], len(subject.x)
    for early_stop in (False, True):
        counter.reset()
        pgd(counter, subject.x, subject.y, threat, steps=40, early_stop=early_stop,
            generator=torch.Generator().manual_seed(0))
        rows.append([subject.name, f"early_stop={early_stop}", f"{counter.gradients / n:.2f}",
                     f"{counter.forwards / n:.2f}",
                     f"{(counter.forwards - counter.gradients) / n:.2f}"])
    return rows


def strength(subject: Subject, seeds: int = 3) -> list[list[str]]:
    threat = ThreatModel("linf", EPS[subject.name], Domain(0.0, 1.0))
    rows, ref = [], None
    for name, passes in PASSES.items():
        accs = [float(score(subject.model, subject.x, subject.y, attack(subject, s, **passes),
                            threat).summary()["robust_accuracy"]) for s in range(seeds)]
        acc = 100 * sum(accs) / len(accs)
        ref = acc if ref is None else ref
        rows.append([subject.name, name, f"{acc:.2f} %", f"{acc - ref:+.2f}"])
    return rows


def speed(subject: Subject, repeats: int) -> list[list[str]]:
    cases = {name: (lambda p=passes: attack(subject, 0, **p)) for name, passes in PASSES.items()}
    start = time.perf_counter()
    attack(subject, 0, compile=True)  # compiles (the dynamic batch: one graph for every size)
    compile_s = time.perf_counter() - start
    times = interleaved(cases, repeats)
    eager = median(times["eager fp32"])
    rows = [[subject.name, name, f"{median(t) * 1e3:.1f}", f"{eager / median(t):.2f}"]
            for name, t in times.items()]
    runs_to_pay = compile_s / max(1e-9, eager - median(times["compile=True"]))
    rows.append([subject.name, "compile=True: first call (compilation)", f"{compile_s * 1e3:.0f}",
                 "pays off after " + (f"{runs_to_pay:.0f} runs" if runs_to_pay > 0 else "never")])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="counts,strength,speed")
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="digits,nsl-kdd", help="subjects, comma-separated")
    args = parser.parse_args()
    only = args.only.split(",")
    parts = args.parts.split(",")
    torch.manual_seed(0)
    log("training the models ...")
    subjects = [digits_subject(256)] if "digits" in only else []
    nsl = nsl_kdd_subject(args.nsl_kdd, 1024) if "nsl-kdd" in only else None
    subjects += [nsl] if nsl is not None else []
    print(f"# PGD's gradient passes\n\n{environment()}; bf16 native on this CPU: "
          f"{native('bf16')}, fp16: {native('fp16')}\n")
    if "counts" in parts:
        print("## Model passes per sample, PGD-40 L∞ (QueryCounter)\n")
        print(table(["model", "run", "gradients / sample", "forwards / sample",
                     "forwards without gradient / sample"],
                    [r for s in subjects for r in counts(s)]) + "\n")
    if "strength" in parts:
        print("## Robust accuracy of PGD-40 L∞ with early stopping, mean of 3 random starts\n")
        print(table(["model", "gradient pass", "robust accuracy", "points from eager fp32"],
                    [r for s in subjects for r in strength(s)]) + "\n")
    if "speed" in parts:
        print(f"## PGD-40 L∞ with early stopping, median of {args.repeats} interleaved runs\n")
        print(table(["model", "gradient pass", "median ms", "eager fp32 time ÷ this"],
                    [r for s in subjects for r in speed(s, args.repeats)]) + "\n")


if __name__ == "__main__":
    main()

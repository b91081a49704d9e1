"""Does ``compile=True`` pay for itself on a 500-sample evaluation? `evaluate` with PGD-40 L∞ and
early stopping, eager against compiled, the compilation included.

Usage: .venv/bin/python benchmarks/compile_eval.py [--nsl-kdd DIR] [--repeats 3]

Subjects (models of ``benchmarks/common.py``): the digits small_cnn on 500 images of the
upsampled digits' *train* split (its test split has 450), eps 0.1, box [0, 1]; the NSL-KDD MLP on
500 KDDTest+ records, eps 0.05, the data set's Domain. ``evaluate(..., n=500, batch_size=250,
checks=False)``: two batches, as a default evaluation runs them.

Per subject, after one eager warm-up, it times (interleaved over ``--repeats`` rounds):

* ``eager``: the default;
* ``compiled, cold``: the first compiled evaluation of the process, the inductor cache pointed at
  an empty folder (``TORCHINDUCTOR_CACHE_DIR``, set before torch is imported): what the first
  ``--compile`` run on a machine pays (once per subject; the rounds below reuse its caches);
* ``compiled, recompiled``: ``torch._dynamo.reset()`` and advlab's pass cache cleared before the
  call, so it compiles again, from the warm on-disk caches: what a later process pays;
* ``compiled, steady``: the compiled pass already in advlab's cache (no compilation): the pass's
  own speed.

Ratios are eager ÷ compiled (above 1: compiled faster). Robust accuracies are printed to show
the compiled evaluation gives the eager one's result.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="advlab-inductor-"))

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_NSL_KDD,
    Subject,
    digits_subject,
    environment,
    log,
    median,
    nsl_kdd_subject,
    table,
)

from advlab import accelerate  # noqa: E402
from advlab.evaluation import evaluate  # noqa: E402

EPS = {"digits": 0.1, "nsl-kdd": 0.05}
SPLIT = {"digits": "train", "nsl-kdd": "test"}


def one(subject: Subject, compile: bool) -> tuple[float, float]:
    """Seconds and robust accuracy of one 500-sample evaluation."""
    start = time.perf_counter()
    ev = evaluate(subject.model, subject.dataset, [{"name": "pgd", "steps": 40}],
                  {"linf": [EPS[subject.name]]}, n=500, batch_size=250, seed=0,
                  split=SPLIT[subject.name], progress=False, checks=False, compile=compile)
    return time.perf_counter() - start, ev.robust_accuracy("pgd", EPS[subject.name])


def forget() -> None:
    """Drop every compiled graph: the next compiled call compiles again."""
    torch._dynamo.reset()
    accelerate._compiled.clear()


def bench(subject: Subject, repeats: int) -> list[list[str]]:
    seconds: dict[str, list[float]] = {"eager": [], "compiled, cold": [],
                                       "compiled, recompiled": [], "compiled, steady": []}
    accuracy: dict[str, float] = {}
    one(subject, False)  # warm-up (the first pass measures the activations per row)
    forget()
    t, accuracy["compiled, cold"] = one(subject, True)
    seconds["compiled, cold"].append(t)
    for r in range(repeats):
        log(f"  {subject.name}: round {r + 1}/{repeats}")
        for case in ("eager", "compiled, recompiled", "compiled, steady"):
            if case == "compiled, recompiled":
                forget()
            t, accuracy[case] = one(subject, case != "eager")
            seconds[case].append(t)
    eager = median(seconds["eager"])
    return [[subject.name, case, str(len(ts)), f"{median(ts):.2f}", f"{eager / median(ts):.2f}",
             f"{100 * accuracy[case]:.1f} %"] for case, ts in seconds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="digits,nsl-kdd")
    args = parser.parse_args()
    torch.manual_seed(0)
    print("# compile=True on a 500-sample evaluation (PGD-40 L∞, early stopping)\n")
    print(f"{environment()}; medians of {args.repeats} interleaved rounds after 1 eager warm-up; "
          f"inductor cache {os.environ['TORCHINDUCTOR_CACHE_DIR']}\n")
    rows = []
    only = args.only.split(",")
    if "nsl-kdd" in only:
        log("training the NSL-KDD MLP ...")
        nsl = nsl_kdd_subject(args.nsl_kdd, 500)
        if nsl is not None:
            rows += bench(nsl, args.repeats)
    if "digits" in only:
        log("training the digits small_cnn ...")
        rows += bench(digits_subject(256), args.repeats)
    print(table(["model", "evaluation", "runs", "median s", "eager ÷ this", "robust acc"], rows,
                "llrrrr"))


if __name__ == "__main__":
    main()

"""Overhead of advlab's PGD over the gradient floor: pgd time ÷ (steps × one forward+backward).

Usage: .venv/bin/python benchmarks/bench_attacks.py [--repeats 15] [--nsl-kdd DIR] [--profile]

For two models, on one batch each,

* the NSL-KDD MLP (``train_classifier(load("nsl-kdd", DIR), "mlp", epochs=3)``), batch 1024 of
  the test rows, threat domain = the data set's Domain (bounds, integer/binary/one-hot features
  relaxed in the loop and repaired once at the end, immutable protocol_type);
* the digits small_cnn (28×28 upsampled digits, 5 epochs), batch 256 (the 450 test images,
  repeated if the batch is larger), domain [0, 1];

times ``pgd(model, x, y, ThreatModel(norm, eps, domain), steps=20, early_stop=...)`` and one
forward+backward of the model on the same batch (``torch.autograd.grad`` of the summed
cross-entropy w.r.t. the input), median over the repeats, interleaved after one warm-up run.
The figure to quote is the ratio ``pgd / (20 × forward+backward)``: 1.0 is the cost of the
gradients alone (a PGD run also does one forward pass of the last iterate, about +0.02 of the
ratio; the other iterates are judged by the logits of their own gradient pass). When advlab
runs a batch in row chunks (:mod:`advlab.models.batching`), the table also gives the ratio to
its own, chunked, forward+backward. The target is ≤ 1.05 for L∞ without early stopping
(issue 20). With early stopping the ratio depends on how fast the samples fall, so it is
reported for information only, for several intervals ``k`` between two compactions of the
active set (:data:`advlab.attacks.iterate.COMPACT_EVERY`).

``--repeats 0`` skips the timing. ``--curve`` also prints the fraction of samples still active at
each step of a PGD-40 run with early stopping (the work that early stopping leaves), averaged
over 3 random starts.

``--linf-only`` times the floors and L∞ PGD alone (the bar's rows).

``--profile`` also prints the top functions of a cProfile run of each L∞ PGD call (no early stop).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
from collections.abc import Callable
from pathlib import Path

import torch
from common import (
    DEFAULT_NSL_KDD,
    Subject,
    digits_subject,
    environment,
    fmt,
    forward_backward,
    interleaved,
    log,
    median,
    nsl_kdd_subject,
    table,
)

import advlab.attacks.iterate as loop
from advlab import Domain, ThreatModel
from advlab.accelerate import GradientPass
from advlab.attacks import pgd
from advlab.losses import logits_and_grad
from advlab.models.batching import chunk_count

STEPS = 20
CHUNKED = "forward+backward in advlab's row chunks"
# eps per norm and data set: L∞ as in compare.py; L2 and L1 of comparable strength
EPS = {"digits": {"linf": 0.1, "l2": 1.5, "l1": 15.0},
       "nsl-kdd": {"linf": 0.05, "l2": 0.5, "l1": 2.0}}


def cases_for(subject: Subject, linf_only: bool = False) -> dict[str, Callable[[], object]]:
    x, y, model = subject.x, subject.y, subject.model
    domain = subject.dataset.domain
    eps = EPS[subject.name]

    def run(norm: str, early_stop: bool, every: int = 1) -> Callable[[], object]:
        threat = ThreatModel(norm, eps[norm], domain)  # type: ignore[arg-type]

        def go() -> object:
            gen = torch.Generator().manual_seed(0)
            saved = loop.COMPACT_EVERY["cpu"]
            loop.COMPACT_EVERY["cpu"] = every
            try:
                return pgd(model, x, y, threat, steps=STEPS, early_stop=early_stop,
                           generator=gen)
            finally:
                loop.COMPACT_EVERY["cpu"] = saved

        return go

    logits_and_grad(model, x, y)  # the first call measures the activations per row
    if linf_only:  # the bar's rows alone (a loaded machine)
        return {"forward+backward": forward_backward(model, x, y),
                CHUNKED: functools.partial(logits_and_grad, model, x, y),
                f"pgd linf eps={eps['linf']}, early_stop=False": run("linf", False),
                f"pgd linf eps={eps['linf']}, early_stop=True": run("linf", True)}
    return {
        "forward+backward": forward_backward(model, x, y),
        CHUNKED: functools.partial(logits_and_grad, model, x, y),
        f"pgd linf eps={eps['linf']}, early_stop=False": run("linf", False),
        f"pgd linf eps={eps['linf']}, early_stop=True": run("linf", True),
        **{f"pgd linf eps={eps['linf']}, early_stop=True, compact every {k} steps":
           run("linf", True, k) for k in (2, 4, 8)},
        f"pgd l2 eps={eps['l2']}, early_stop=False": run("l2", False),
        f"pgd l1 eps={eps['l1']}, early_stop=False": run("l1", False),
    }


class _Rows(GradientPass):
    """The eager pass, recording the rows of every call (the active batch of each step)."""

    rows: list[int]

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 target: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        self.rows.append(x.shape[0])
        return super().__call__(x, y, target)


def curve(subject: Subject, seeds: int = 3, steps: int = 40) -> list[float]:
    """Mean fraction of the samples active at each step of PGD-``steps`` L∞, early stopping."""
    threat = ThreatModel("linf", EPS[subject.name]["linf"], Domain(0.0, 1.0))
    total = [0.0] * steps
    for seed in range(seeds):
        rec = _Rows(subject.model, "ce", False, "fp32")
        rec.rows = []
        start = threat.random_point(subject.x, torch.Generator().manual_seed(seed), relax=True)
        loop.iterate(rec, subject.x, subject.y, None, threat, start, steps=steps,
                        step_size=2.5 * threat.eps / steps, early_stop=True,
                        coordinates_per_step=None)
        for i, r in enumerate(rec.rows):
            total[i] += r / len(subject.x) / seeds
    return total


def profile(name: str, fn: Callable[[], object], top: int = 18) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of {name} (sorted by own time):\n```")
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip()))
    print("```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--digits-batch", type=int, default=256)
    parser.add_argument("--nsl-kdd-batch", type=int, default=1024)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--curve", action="store_true")
    parser.add_argument("--linf-only", action="store_true",
                        help="time only the floors and L∞ PGD (no L2/L1, no compaction intervals)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"# PGD overhead over the gradient floor ({STEPS} steps)\n")
    print(f"{environment()}; median of {args.repeats} interleaved repeats after 1 warm-up\n")
    subjects: list[tuple[str, Subject]] = []
    log("training the NSL-KDD MLP ...")
    nsl = nsl_kdd_subject(args.nsl_kdd, args.nsl_kdd_batch)
    if nsl is None:
        print(f"NSL-KDD MLP row skipped: no data folder at {args.nsl_kdd} (pass --nsl-kdd DIR)\n")
    else:
        subjects.append((f"NSL-KDD mlp, batch {args.nsl_kdd_batch}×122", nsl))
    log("training the digits small_cnn ...")
    subjects.append((f"digits small_cnn, batch {args.digits_batch}×1×28×28",
                     digits_subject(args.digits_batch)))
    rows, to_profile = [], []
    for label, subject in subjects if args.repeats > 0 else []:  # --repeats 0: no timing
        log(f"timing {label} ...")
        cases = cases_for(subject, args.linf_only)
        times = interleaved(cases, args.repeats)
        fb, own = median(times["forward+backward"]), median(times[CHUNKED])
        chunks = chunk_count(subject.model, subject.x)
        for name, ts in times.items():
            med = median(ts)
            floor = name in ("forward+backward", CHUNKED)
            shown = f"{name} ({chunks})" if name == CHUNKED else name
            rows.append([label, shown, fmt(med * 1e3, 2), fmt(STEPS * fb * 1e3, 1),
                         fmt(med / fb) if name == CHUNKED else "–" if floor
                         else fmt(med / (STEPS * fb)),
                         "–" if floor else fmt(med / (STEPS * own))])
        linf = next(n for n in cases if n.startswith("pgd linf") and "False" in n)
        to_profile.append((f"{label}: {linf}", cases[linf]))
    if args.repeats > 0:
        print(table(["model, batch", "case", "median ms", f"{STEPS} × f+b ms",
                     f"pgd / ({STEPS} × f+b)", f"pgd / ({STEPS} × advlab's f+b)"], rows, "llrrrr"))
        print("\nf+b: one forward+backward of the whole batch, as the reference libraries run it. "
              "advlab's f+b: the same pass in advlab's row chunks (their number in brackets; "
              "advlab.models.batching), the floor of its own steps; its row shows its ratio to the "
              "whole batch.")
        print("\nTarget: ratio ≤ 1.05 for L∞ with early_stop=False (issue 20). Domains: NSL-KDD = "
              "the data set's Domain (one-hot/integer/binary relaxed, repaired at the end); "
              "digits = [0, 1].")
    if args.curve:
        for label, subject in subjects:
            fractions = curve(subject)
            print(f"\nActive fraction per step, PGD-40 L∞ early stopping, {label} (box [0, 1] "
                  f"as in compare.py; mean of 3 random starts); sum = {sum(fractions):.2f} of "
                  "40 steps:\n")
            print(" ".join(f"{v:.2f}" for v in fractions))
    if args.profile:
        for name, fn in to_profile:
            profile(name, fn)


if __name__ == "__main__":
    main()

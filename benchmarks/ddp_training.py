"""Data-parallel adversarial training (issue 16): PGD-AT on the digits MLP with 1 process and
with 2 gloo processes (`advlab train --workers 2`, torchrun), same epochs and settings, each
model then evaluated by `advlab evaluate` on the whole digits test split (clean accuracy and
PGD-20 at the training eps). The 1-process run is repeated over ``--seeds`` to show the seed
spread the 2-process figures are compared with. The runs are started at once (their figures
do not depend on the timing): with ``OMP_NUM_THREADS=1`` on a shared machine.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/ddp_training.py`` (no lock: it
measures accuracies, not times).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ADVLAB = [sys.executable, "-m", "advlab"]


def advlab(*commands: list[str]) -> list[dict]:
    """Run the ``advlab`` commands at once (their figures do not depend on the timing, and a
    shared machine gives each process its own share); their last JSON lines, in order."""
    procs = [subprocess.Popen([*ADVLAB, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for argv in commands]
    lines = []
    for argv, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"failed: advlab {' '.join(argv)}\n{err[-3000:]}")
        lines.append(json.loads(out.strip().splitlines()[-1]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    train = ["train", "--dataset", "digits", "--model", "mlp", "--defense", "pgd-at", "--eps",
             str(args.eps), "--epochs", str(args.epochs), "--lr", "3e-3", "--batch-size", "64",
             "--quiet"]
    runs = [(seed, workers) for seed in range(args.seeds)
            for workers in ((1, 2) if seed == 0 else (1,))]
    with tempfile.TemporaryDirectory(prefix="advlab-ddp-") as tmp:
        advlab(*[[*train, "--seed", str(seed), "--out", str(Path(tmp) / f"m{seed}-{workers}"),
                  "--workers", str(workers)] for seed, workers in runs])
        evals = advlab(*[["evaluate", "--model", str(Path(tmp) / f"m{seed}-{workers}"),
                          "--attack", "pgd:steps=20", "--eps", f"linf={args.eps}", "--n", "450",
                          "--seed", "0", "--out", str(Path(tmp) / f"e{seed}-{workers}"),
                          "--quiet"] for seed, workers in runs])
    rows = [(seed, workers, ev["clean_accuracy"], ev["worst_case"][f"linf={args.eps:g}"])
            for (seed, workers), ev in zip(runs, evals, strict=True)]
    print(f"digits MLP, PGD-AT linf eps {args.eps}, {args.epochs} epochs, batch 64, lr 3e-3; "
          "evaluated on the 450 test images, PGD-20 at the same eps")
    print("| seed | processes | clean accuracy | PGD-20 accuracy |\n|---:|---:|---:|---:|")
    for seed, workers, clean, robust in rows:
        print(f"| {seed} | {workers} | {100 * clean:.1f} % | {100 * robust:.1f} % |")
    one = [r for r in rows if r[1] == 1]
    two = next(r for r in rows if r[1] == 2)
    base = next(r for r in one if r[0] == 0)
    print(f"2 processes - 1 process (seed 0): clean {100 * (two[2] - base[2]):+.1f} points, "
          f"PGD {100 * (two[3] - base[3]):+.1f} points; seed spread of 1 process (max - min): "
          f"clean {100 * (max(r[2] for r in one) - min(r[2] for r in one)):.1f}, PGD "
          f"{100 * (max(r[3] for r in one) - min(r[3] for r in one)):.1f} points")


if __name__ == "__main__":
    main()

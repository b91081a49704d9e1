"""Data-parallel adversarial training (issue 16): PGD-AT on the digits MLP with 1 process and
with 2 gloo processes (`advlab train --workers 2`, torchrun), same epochs and settings, each
model then evaluated by `advlab evaluate` on the whole digits test split (clean accuracy and
PGD-20 at the training eps). The 1-process run is repeated over ``--seeds`` to show the seed
spread the 2-process figures are compared with.

Run: ``flock /tmp/advlab-bench.lock nice -n 0 .venv/bin/python benchmarks/ddp_training.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ADVLAB = [sys.executable, "-m", "advlab"]


def advlab(*argv: str) -> dict:
    done = subprocess.run([*ADVLAB, *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: advlab {' '.join(argv)}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    train = ["train", "--dataset", "digits", "--model", "mlp", "--defense", "pgd-at", "--eps",
             str(args.eps), "--epochs", str(args.epochs), "--lr", "3e-3", "--batch-size", "64",
             "--quiet"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="advlab-ddp-") as tmp:
        for seed in range(args.seeds):
            for workers in (1, 2) if seed == 0 else (1,):
                model = Path(tmp) / f"m{seed}-{workers}"
                advlab(*train, "--seed", str(seed), "--out", str(model), "--workers",
                       str(workers))
                ev = advlab("evaluate", "--model", str(model), "--attack", "pgd:steps=20",
                            "--eps", f"linf={args.eps}", "--n", "450", "--seed", "0",
                            "--out", str(Path(tmp) / f"e{seed}-{workers}"), "--quiet")
                rows.append((seed, workers, ev["clean_accuracy"],
                             ev["worst_case"][f"linf={args.eps:g}"]))
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

"""Scale-out figures of BENCHMARKS.md (issue 16): throughput of a sharded evaluation on 2
processes against 1, and the peak memory of an evaluation of the whole KDD Cup 99 test split.

``throughput``: NSL-KDD (KDDTest+, every record), PGD-20 under the Domain at three L∞ eps,
`advlab evaluate` on 1 process with 1 thread, on 1 process with 2 threads, and with
``--workers 2`` (torchrun, gloo, 1 thread each), interleaved ``--repeats`` times; the ratios of
the medians of the wall times (the whole command, and the evaluation alone as timing.json
records it). Every summary is checked to be byte-identical to the first.

``memory``: an MLP trained on KDD Cup 99's 10 % file split with ``test_size=0.63`` (the largest
test split that leaves the model a training split: 311,234 of the 494,021 records, about the
311,029 of the full KDD Cup 99 test set), then `advlab evaluate` on every record of the test
split with PGD-20 under the Domain, under ``/usr/bin/time -v`` for the peak RSS of the process;
``--n 20000,80000,311234`` evaluates those numbers of records instead (one run each, the same
model), to show how the peak RSS grows with n.

Run under the shared lock: ``flock /tmp/advlab-bench.lock nice -n 0 .venv/bin/python
benchmarks/scale.py throughput`` (or ``memory``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADVLAB = [sys.executable, "-m", "advlab"]
DATA = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data"


def _run(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def throughput(args: argparse.Namespace, work: Path) -> None:
    model = args.model or work / "nsl-kdd-mlp"
    if args.model is None:
        _run([*ADVLAB, "train", "--dataset", "nsl-kdd", "--data-path",
              str(args.data / "nsl-kdd"), "--model", "mlp", "--epochs", "5", "--quiet", "--out",
              str(model)])
    n = 22544
    flags = ["evaluate", "--model", str(model), "--attack", "pgd:steps=20", "--eps",
             "linf=0.02,0.05,0.1", "--n", str(n), "--batch-size", "500", "--quiet"]
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    configs = {  # name: (workers, environment); --workers 2 gives each process 1 thread
        "1 process, 1 thread": (1, {**base, "OMP_NUM_THREADS": "1"}),
        "1 process, 2 threads": (1, {**base, "OMP_NUM_THREADS": "2"}),
        "2 processes, 1 thread each": (2, base)}
    if not args.two_threads:
        del configs["1 process, 2 threads"]
    walls: dict[str, list[float]] = {name: [] for name in configs}
    evals: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    for r in range(args.repeats):
        turn = r % len(names)  # rotate the order
        for i, name in enumerate(names[turn:] + names[:turn]):
            workers, env = configs[name]
            out = work / f"{i}-{r}"
            walls[name].append(_run([*ADVLAB, *flags, "--out", str(out), "--workers",
                                     str(workers)], env))
            evals[name].append(json.loads((out / "timing.json").read_text())["timing"]
                               ["wall_seconds"])
            summary = (out / "summary.json").read_bytes()
            same = summary == (work / "0-0" / "summary.json").read_bytes()
            if not same:
                raise SystemExit(f"{name}: summary differs from the first run's")
    print(f"NSL-KDD KDDTest+ n={n}, PGD-20 linf eps 0.02/0.05/0.1, batch 500, "
          f"{args.repeats} interleaved repeats (order rotated), {os.cpu_count()} cores; every "
          "summary byte-identical to the first")
    one = statistics.median(walls[names[0]]), statistics.median(evals[names[0]])
    print("| configuration | throughput vs 1 process, 1 thread: whole command | evaluation "
          "alone (timing.json) |\n|---|---:|---:|")
    for name in names:
        wall, ev = statistics.median(walls[name]), statistics.median(evals[name])
        print(f"| {name} | {one[0] / wall:.2f} | {one[1] / ev:.2f} |")


def memory(args: argparse.Namespace, work: Path) -> None:
    import torch

    from advlab.data import load
    from advlab.models import save, train_classifier

    options = {"labels": "binary", "seed": 0, "test_size": 0.63}
    total = 311234  # the test split of the 494,021 records with test_size=0.63
    model = args.model or work / "kdd-mlp"
    if args.model is None:
        data = load("kddcup99", args.data / "kddcup99", **options)
        torch.manual_seed(0)
        trained = train_classifier(data, "mlp", epochs=1, batch_size=512, val_fraction=0,
                                   progress=False)
        save(trained.model, model, architecture=trained.architecture,
             arguments=trained.arguments, class_names=list(data.class_names),
             dataset={"name": "kddcup99", "path": str(args.data / "kddcup99"),
                      "options": options}, metrics=trained.metrics, seed=0)
        total = int(data.y_test.shape[0])
        del data, trained
    sizes = [min(int(v), total) for v in args.n.split(",")] if args.n else [total]
    print(f"KDD Cup 99 10 % file, test_size=0.63: test split of {total} records; "
          f"PGD-{args.steps} under the Domain, linf eps 0.05 and 0.1, batch 1000, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("| n evaluated | peak RSS | results files | clean accuracy | worst case (eps 0.05, 0.1)"
          " |\n|---:|---:|---:|---:|---:|")
    for n in sizes:
        out = work / f"kdd-eval-{n}"
        command = ["/usr/bin/time", "-v", *ADVLAB, "evaluate", "--model", str(model),
                   "--attack", f"pgd:steps={args.steps}", "--eps", "linf=0.05,0.1", "--n", str(n),
                   "--batch-size", "1000", "--out", str(out), "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)",
                            done.stderr).group(1))
        summary = json.loads((out / "summary.json").read_text())
        assert summary["dataset_card"]["n"] == n
        results = sum(p.stat().st_size for p in out.glob("results*.jsonl"))
        worst = ", ".join(f"{w['robust_accuracy']:.4f}" for w in summary["worst_case"])
        print(f"| {n} | {rss / 2**20:.2f} GiB ({rss} kB) | {results / 2**20:.0f} MiB | "
              f"{summary['clean_accuracy']:.4f} | {worst} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("throughput", "memory"))
    parser.add_argument("--data", type=Path, default=DATA, help="the folder of the data sets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="a model folder to evaluate instead of "
                        "training one (throughput: NSL-KDD, `advlab train --dataset nsl-kdd "
                        "--model mlp --epochs 5`; memory: KDD Cup 99 with test_size=0.63)")
    parser.add_argument("--steps", type=int, default=20, help="memory: PGD steps (the records, "
                        "hence the memory, do not depend on them)")
    parser.add_argument("--no-two-threads", dest="two_threads", action="store_false",
                        help="throughput: leave out 1 process with 2 threads (on a machine "
                        "with more runnable processes than cores its OpenMP team stalls)")
    parser.add_argument("--n", help="memory: comma-separated numbers of test records to "
                        "evaluate, one run each (default: the whole split)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="advlab-scale-") as tmp:
        (throughput if args.what == "throughput" else memory)(args, Path(tmp))


if __name__ == "__main__":
    main()

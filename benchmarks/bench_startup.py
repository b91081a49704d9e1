"""Start-up time of the command line, before and after a change, interleaved in one run.

Usage (the "before" tree is an export of an older commit's ``src``)::

    git archive f3e588c src | tar -x -C /tmp/advlab-before
    flock /tmp/advlab-bench.lock nice -n 0 .venv/bin/python benchmarks/bench_startup.py \\
        --before /tmp/advlab-before/src --runs 15

Each row runs a fresh interpreter with ``PYTHONPATH`` set to one tree (it wins over the
editable install), alternating before/after so that machine noise hits both alike, and reports
the median wall time of each and their ratio. ``importtime`` rows sum the self times that
``python -X importtime -c 'import advlab.cli'`` reports (median over the runs). ``python -c
pass`` is the floor: the interpreter's own start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "python -c pass (floor)": ["-c", "pass"],
    "import advlab.cli": ["-c", "import advlab.cli"],
    "advlab --help": ["-m", "advlab", "--help"],
    "advlab attacks": ["-m", "advlab", "attacks"],
}


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src)}


def wall(args: list[str], src: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=_env(src), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def import_self_time(src: Path) -> float:
    """Sum of the self times (seconds) ``-X importtime`` reports for ``import advlab.cli``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import advlab.cli"],
                          env=_env(src), check=True, capture_output=True, text=True)
    total = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            first = line.split(":", 1)[1].split("|")[0].strip()
            if first.isdigit():
                total += int(first)
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the older tree's src")
    parser.add_argument("--after", type=Path, default=Path(__file__).parents[1] / "src")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    rows: dict[str, tuple[list[float], list[float]]] = {}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            before, after = rows.setdefault(name, ([], []))
            before.append(wall(command, args.before))
            after.append(wall(command, args.after))
        before, after = rows.setdefault("importtime: sum of self times", ([], []))
        before.append(import_self_time(args.before))
        after.append(import_self_time(args.after))
    print(f"median of {args.runs} interleaved runs, {sys.executable}")
    print("| what | before (s) | after (s) | before / after |")
    print("|---|---:|---:|---:|")
    for name, (before, after) in rows.items():
        b, a = statistics.median(before), statistics.median(after)
        print(f"| {name} | {b:.3f} | {a:.3f} | {b / a:.1f}× |")


if __name__ == "__main__":
    main()

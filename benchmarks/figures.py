"""What the reproduction scripts share: mean ± std over seeds, the ``--dataset``/``--data-path``
options with their default paths, and the JSON/markdown output of a ``run()`` result.

Each reproduction script (``xenia.py``, ``signature_shift.py``, ``svm_injection_rbf.py``,
``activation_clustering.py``) has a ``run(..., quick: bool, seed: int, seeds: int) -> dict``
function that returns its figures (the coming ``advlab reproduce`` calls it), and a ``main()``
that parses these options, calls ``run`` and prints the tables. Not a module of advlab: the
scripts import it as a sibling file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_PATHS = {"nsl-kdd": DATA / "nsl-kdd", "kddcup99": DATA / "kddcup99",
                 "tuandromd": DATA / "tuandromd" / "TUANDROMD.csv", "mnist": DATA / "mnist"}


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the report."""
    print(message, file=sys.stderr, flush=True)


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` (sample std; 0 for one value)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_std: no values")
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": float(len(vals))}


def pm(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """``mean ± std`` of ``values × scale`` (just the value for one seed)."""
    m = mean_std(values)
    if m["n"] == 1:
        return f"{scale * m['mean']:.{digits}f}"
    return f"{scale * m['mean']:.{digits}f} ± {scale * m['std']:.{digits}f}"


def summarize(per_seed: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean ± std of every numeric key shared by the per-seed dicts."""
    keys = [k for k, v in per_seed[0].items() if isinstance(v, (int, float))]
    return {k: mean_std([d[k] for d in per_seed]) for k in keys if all(k in d for d in per_seed)}


def seed_list(seed: int, seeds: int) -> list[int]:
    if seeds < 1:
        raise ValueError(f"need seeds >= 1, got {seeds}")
    return list(range(seed, seed + seeds))


def parser(description: str, datasets: Sequence[str], default: str) -> argparse.ArgumentParser:
    """The options every reproduction script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", choices=list(datasets), default=default)
    p.add_argument("--data-path", type=Path, default=None,
                   help="the data file or folder (default: ../shared/data/<dataset>)")
    p.add_argument("--quick", action="store_true", help="the small protocol (under ~2 min)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (seed, seed+1, ...)")
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    return p


def data_path(dataset: str, path: Path | None) -> Path:
    out = path if path is not None else DEFAULT_PATHS[dataset]
    if not out.exists():
        sys.exit(f"{out} does not exist (pass --data-path)")
    return out


def main_run(args: argparse.Namespace, run: Callable[..., dict[str, Any]],
             report: Callable[[dict[str, Any]], str], **extra: Any) -> dict[str, Any]:
    """Call ``run`` with the shared options, print ``report(result)``, write ``--json``."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):  # one core: BLAS threads only contend on a busy machine
        result = run(dataset=args.dataset, data_path=data_path(args.dataset, args.data_path),
                     quick=args.quick, seed=args.seed, seeds=args.seeds, **extra)
    result["seconds"] = time.perf_counter() - t0
    print(report(result))
    log(f"{time.perf_counter() - t0:.0f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
        log(f"wrote {args.json}")
    return result

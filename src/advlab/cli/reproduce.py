"""``advlab reproduce``: the papers' headline figures beside advlab's (:mod:`advlab.reproduce`),
cached per experiment in ``--out``, with the page ``reproduction.html`` (and, with
``--markdown``, docs/reproduction.md)."""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path
from typing import Any

from advlab.cli.common import COUNT, SEED, UsageError, log


def register(sub: Any) -> None:
    p = sub.add_parser("reproduce", help="reproduce the headline figures of the course's papers "
                       "(PAPERS.md): paper beside advlab, seeds, spread and a verdict")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (see --list)")
    p.add_argument("--all", action="store_true", help="run every experiment")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--quick", action="store_true",
                   help="the smoke protocol: smaller data, fewer steps and seeds")
    p.add_argument("--dataset", help="run on this data set where an experiment's protocol "
                   "allows it (digits, mnist, nsl-kdd, kddcup99, tuandromd)")
    p.add_argument("--seeds", type=COUNT, help="seeds per experiment (default 3, 2 with --quick)")
    p.add_argument("--seed", type=SEED, default=0, help="first seed")
    p.add_argument("--out", type=Path, help="output folder (results cached per experiment)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--mnist", help="MNIST folder (IDX files)")
    p.add_argument("--nsl-kdd", dest="nsl_kdd", help="NSL-KDD folder")
    p.add_argument("--kddcup99", help="KDD Cup 99 10 %% file")
    p.add_argument("--tuandromd", help="TUANDROMD CSV file")
    p.add_argument("--markdown", type=Path, help="also write the table as markdown here "
                   "(e.g. docs/reproduction.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=reproduce)


def reproduce(args: argparse.Namespace) -> dict[str, Any]:
    from advlab.reproduce import EXPERIMENTS

    if args.list:
        for name, module in EXPERIMENTS.items():
            log(f"{name:<22} {module}")
        return {"command": "reproduce", "experiments": list(EXPERIMENTS)}
    names = list(EXPERIMENTS) if args.all else list(args.names)
    if not names:
        raise UsageError("name experiments to run, or --all (see `advlab reproduce --list`)")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise UsageError(f"unknown experiment(s): {', '.join(unknown)} (see --list)")
    if args.out is None:
        raise UsageError("--out DIR is required")
    paths = {k: v for k, v in (("mnist", args.mnist), ("nsl-kdd", args.nsl_kdd),
                               ("kddcup99", args.kddcup99), ("tuandromd", args.tuandromd))
             if v}
    for name, path in paths.items():
        if not Path(path).exists():
            raise UsageError(f"--{name}: {path} does not exist")
    from advlab.report.reproduction import reproduction_markdown, write_reproduction
    from advlab.reproduce import Config
    from advlab.reproduce.runner import run_experiments

    config = Config(quick=args.quick, seeds=args.seeds, seed=args.seed, dataset=args.dataset,
                    paths=paths, device=args.device)
    start = time.perf_counter()
    results = run_experiments(names, config, args.out, progress=not args.quiet, log=log)
    meta = {"quick": args.quick, "seconds": sum(r.get("seconds", 0) for r in results),
            "command": command_line(args, names, paths),
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {args.device}"}
    page = write_reproduction(args.out, results, meta)
    if args.markdown is not None:
        args.markdown.write_text(reproduction_markdown(results, meta), encoding="utf-8")
    return {"command": "reproduce", "out": str(args.out), "page": str(page),
            "seconds": round(time.perf_counter() - start, 1),
            "experiments": [{"name": r["name"], "status": r["status"],
                             "verdict": r.get("verdict")} for r in results]}


def command_line(args: argparse.Namespace, names: list[str], paths: dict[str, str]) -> str:
    """The command that made the page (what docs/reproduction.md quotes)."""
    parts = ["advlab reproduce", "--all" if args.all else " ".join(names)]
    parts += ["--quick"] * args.quick + [f"--seeds {args.seeds}"] * (args.seeds is not None)
    parts += [f"--dataset {args.dataset}"] * (args.dataset is not None)
    parts += [f"--{name} {path}" for name, path in paths.items()]
    return " ".join(parts + [f"--out {args.out}"])

"""`advlab evaluate`, `advlab report` and `advlab attacks`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from advlab.cli.common import (
    UsageError,
    device_of,
    evaluation_preflight,
    load_model,
    log,
    recorded_dataset,
)
from advlab.cli.launch import check_workers, torchrun


def evaluate(args: argparse.Namespace) -> dict[str, Any] | int | None:
    from advlab.evaluation import config as evaluation_config
    from advlab.models import distributed

    file_settings, source = None, "flags"
    if args.config is not None:
        file_settings, source = evaluation_config.read_toml(args.config), str(args.config)
    flags = {"model": args.model, "model_factory": args.model_factory, "dataset": args.dataset,
             "data_path": args.data_path, "split": args.split, "n": args.n,
             "batch_size": args.batch_size, "seed": args.seed, "device": args.device,
             "out": args.out, "suite": getattr(args, "suite", None),
             "compile": args.compile, "precision": args.precision,
             "attack": [evaluation_config.parse_attack_flag(a) for a in args.attack or []],
             "eps": dict(evaluation_config.parse_eps_flag(e) for e in args.eps or [])}
    config = evaluation_config.build(file_settings, flags, source)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other: continue the run in "
                         "--out, or replace it")
    device = device_of(config.device)
    config.device = str(device)
    check_workers(args.workers, device)
    from advlab.accelerate import check_precision

    try:  # before anything loads: a precision this device cannot run
        check_precision(config.precision, device)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not distributed.launched():  # refuse before loading anything (the run checks again)
        from advlab.evaluation.store import check_folder

        check_folder(config.out, resume=args.resume, overwrite=args.overwrite)
    if args.workers > 1 and not distributed.launched():
        load_model(config)  # a model that does not load fails here, once, not on every rank
        return torchrun(args.argv, args.workers)
    with distributed.process_group(device) as device:
        config.device = str(device)
        return run_evaluation(config, args.quiet, resume=args.resume, overwrite=args.overwrite)


def run_evaluation(config: Any, quiet: bool, *, resume: bool,
                   overwrite: bool = False) -> dict[str, Any] | None:
    """Load the model and data a config names, evaluate, write summary and report (rank 0;
    the other ranks of a sharded run return ``None``)."""
    import torch

    from advlab.evaluation import evaluate
    from advlab.models import distributed
    from advlab.report import write_report

    model, card, recorded = load_model(config)
    dataset, path, options = recorded_dataset(config.dataset, config.data_path,
                                              config.dataset_options, recorded)
    evaluation_preflight(config, model, card, recorded, dataset)
    name = dataset.name
    out = Path(config.out)
    log(f"evaluating {card.get('source')} on {config.n} {config.split} samples of {name}; "
         f"writing {out}")
    torch.manual_seed(config.seed)  # attacks take generators; this only pins stray randomness
    evaluation = evaluate(
        model, dataset, config.attacks, config.eps, n=config.n, batch_size=config.batch_size,
        seed=config.seed, device=config.device, split=config.split, out_dir=out, resume=resume,
        overwrite=overwrite, progress=not quiet, model_card=card, compile=config.compile,
        precision=config.precision,
        config={"model": config.model, "model_factory": config.model_factory,
                "data_path": None if path is None else str(path), "dataset_options": options})
    if distributed.rank() != 0:
        return None
    report = write_report(out)
    summary = evaluation.summary
    log(headline(summary))
    log(f"report: {report}")
    failed = [c["name"] for c in summary["checks"]
              if not c["passed"] and c.get("severity") == "error"]
    warned = [c["name"] for c in summary["checks"]
              if not c["passed"] and c.get("severity") != "error"]
    if failed:
        log(f"sanity checks FAILED: {', '.join(failed)} (see the report)")
    if warned:
        log(f"sanity-check warnings: {', '.join(warned)} (see the report)")
    worst = {f"{w['norm']}={w['eps']:g}": round(w["robust_accuracy"], 6)
             for w in summary["worst_case"]}
    return {"command": "evaluate", "out": str(out), "report": str(report),
            "clean_accuracy": round(summary["clean_accuracy"], 6), "worst_case": worst,
            "checks_failed": failed, "checks_warned": warned,
            "seconds": summary["timing"]["seconds"], "seed": config.seed}


def headline(summary: dict[str, Any]) -> str:
    """The headline table as text: clean accuracy, robust accuracy per attack × eps, worst case."""
    def pct(v: Any) -> str:
        return "     -" if v is None else f"{100 * v:5.1f}%"

    lines = [f"clean accuracy {pct(summary['clean_accuracy']).strip()} on "
             f"{summary['dataset_card']['n']} samples",
             f"{'attack':<24} {'eps':>8} {'robust acc':>10} {'success':>8} {'median L2':>9} "
             f"{'valid':>7}"]
    for row in summary["results"]:
        eps = "min" if row["eps"] is None else f"{row['norm']} {row['eps']:g}"
        med = row.get("median_l2")
        lines.append(f"{row['attack']:<24} {eps:>8} {pct(row['robust_accuracy']):>10} "
                     f"{pct(row['success_rate']):>8} "
                     f"{'-' if med is None else f'{med:.3f}':>9} {pct(row['valid_rate']):>7}")
        if row.get("cascade"):
            lines.append("  cascade (samples removed): " + " → ".join(
                f"{c['stage']} {c['removed']}/{c['attacked']}" for c in row["cascade"]))
    for row in summary["worst_case"]:
        lines.append(f"{'WORST CASE':<24} {row['norm'] + ' ' + format(row['eps'], 'g'):>8} "
                     f"{pct(row['robust_accuracy']):>10}")
    return "\n".join(lines)


def report(args: argparse.Namespace) -> dict[str, Any]:
    from advlab.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "summary.json").is_file():
        raise UsageError(f"{run_dir}: no summary.json (is it an `advlab evaluate` output folder?)")
    path = write_report(run_dir)
    log(f"report: {path}")
    return {"command": "report", "report": str(path)}


def attacks(args: argparse.Namespace) -> dict[str, Any]:
    """The registry with each attack's knobs, read without importing torch."""
    import inspect

    from advlab.attacks import ATTACKS
    from advlab.attacks.knobs import static_knobs

    rows = []
    for name, spec in ATTACKS.items():
        knobs = {k: (None if v is inspect.Parameter.empty else v)
                 for k, v in static_knobs(spec.function).items() if k not in spec.fixed}
        kind = "minimal-norm" if spec.minimal_norm else "fixed eps"
        log(f"{name:<18} {','.join(spec.norms):<12} {kind:<13} "
             + " ".join(f"{k}={v}" for k, v in knobs.items()))
        rows.append({"name": name, "norms": list(spec.norms), "minimal_norm": spec.minimal_norm,
                     "knobs": {k: v if isinstance(v, (int, float, str, bool)) or v is None
                               else str(v) for k, v in knobs.items()}})
    return {"command": "attacks", "attacks": rows}

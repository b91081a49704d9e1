"""The ``advlab`` command line. Thin: it builds the objects a Python user would, calls one library
function, and writes the outputs.

Conventions: logs and progress go to stderr; one JSON summary line goes to stdout; a user error
prints one line and exits with code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(ValueError):
    """A mistake in the command line or its inputs (exit code 2, no traceback)."""


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit(summary: dict[str, Any]) -> None:
    print(json.dumps(summary, sort_keys=True), flush=True)


def _dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.dataset == "digits":
        options["upsample"] = args.upsample
        if getattr(args, "test_size", None) is not None:
            options["test_size"] = args.test_size
    if args.dataset in ("nsl-kdd", "kddcup99"):
        options["labels"] = args.labels
    if args.dataset in ("digits", "kddcup99", "tuandromd"):
        options["seed"] = args.seed
    return options


def _load_dataset(args: argparse.Namespace) -> Any:
    from advlab import data

    if args.dataset not in data.DATASETS:
        raise UsageError(f"unknown dataset {args.dataset!r}; known: {', '.join(data.DATASETS)}")
    spec = data.DATASETS[args.dataset]
    if spec.needs_path and args.data_path is None:
        raise UsageError(f"dataset {args.dataset!r} needs --data-path (the folder holding its "
                         "files; see `advlab datasets`)")
    _log(f"loading {args.dataset} ...")
    return data.load(args.dataset, args.data_path, **_dataset_options(args))


def _train(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab.models import save, train_classifier

    torch.manual_seed(args.seed)  # the CLI is the only place that seeds globally; recorded below
    dataset = _load_dataset(args)
    _log(f"{dataset.name}: {len(dataset.y_train)} train / {len(dataset.y_test)} test, inputs "
         f"{dataset.input_shape}, {dataset.num_classes} classes")
    start = time.perf_counter()
    trained = train_classifier(
        dataset, args.model, hidden=tuple(args.hidden) if args.hidden else None,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        val_fraction=args.val_fraction, patience=args.patience, device=args.device,
        progress=not args.quiet)
    seconds = time.perf_counter() - start
    accuracy = trained.metrics["test_accuracy"]
    _log(f"test accuracy: {accuracy:.2%} ({trained.settings['epochs_run']} epochs, "
         f"{seconds:.1f} s)")
    save(trained.model.cpu(), args.out, architecture=trained.architecture,
         arguments=trained.arguments,
         dataset={"name": dataset.name, "path": None if args.data_path is None
                  else str(args.data_path), "options": _dataset_options(args),
                  "info": dataset.info, "input_shape": list(dataset.input_shape)},
         class_names=list(dataset.class_names), metrics=trained.metrics,
         training=trained.settings, history=trained.history.as_dict(), seed=args.seed)
    _log(f"wrote {args.out}")
    return {"command": "train", "dataset": dataset.name, "model": args.model, "out": str(args.out),
            "test_accuracy": round(accuracy, 6), "seconds": round(seconds, 3), "seed": args.seed}


def _demo(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or reuse) the digits CNN, then evaluate it: the README's `make demo`."""
    from advlab.models.io import SIDECAR, read_sidecar

    model_dir, eval_dir = args.out / "model", args.out / "eval"
    args.dataset, args.data_path, args.model, args.upsample = "digits", None, "small_cnn", True
    args.labels, args.hidden, args.val_fraction, args.patience = "binary", None, 0.0, None
    args.epochs, args.lr, args.batch_size, args.device = 15, 2e-3, 64, "cpu"
    args.test_size = 0.3  # 540 test images, so that the evaluation can take 500 of them
    _log("advlab demo: the small CNN on scikit-learn's digits upsampled to 28x28 (embedded)")
    reuse = (model_dir / SIDECAR).is_file() and read_sidecar(model_dir).get("seed") == args.seed
    if reuse:
        _log(f"reusing the model in {model_dir} (delete it to train again)")
        trained = {"out": str(model_dir), "reused": True}
    else:
        out, args.out = args.out, model_dir
        trained = _train(args)
        args.out = out
    settings = {
        "model": str(model_dir), "n": 500, "batch_size": 250, "seed": args.seed,
        "out": str(eval_dir),
        "eps": {"linf": [0.02, 0.05, 0.1, 0.2], "l2": [0.5, 1.0, 1.5, 2.0, 3.0]},
        "attack": [{"name": "fgsm"}, {"name": "pgd", "steps": 40},
                   {"name": "deepfool"},
                   {"name": "carlini_wagner_l2", "binary_search_steps": 5, "steps": 100}]}
    from advlab.evaluation import config as evaluation_config

    summary = _run_evaluation(evaluation_config.build(settings, {}, "demo"), args.quiet,
                              resume=False)
    summary.update(command="demo", training=trained)
    return summary


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from advlab.evaluation import config as evaluation_config

    file_settings, source = None, "flags"
    if args.config is not None:
        file_settings, source = evaluation_config.read_toml(args.config), str(args.config)
    flags = {"model": args.model, "model_factory": args.model_factory, "dataset": args.dataset,
             "data_path": args.data_path, "split": args.split, "n": args.n,
             "batch_size": args.batch_size, "seed": args.seed, "device": args.device,
             "out": args.out,
             "attack": [evaluation_config.parse_attack_flag(a) for a in args.attack or []],
             "eps": dict(evaluation_config.parse_eps_flag(e) for e in args.eps or [])}
    config = evaluation_config.build(file_settings, flags, source)
    return _run_evaluation(config, args.quiet, resume=args.resume)


def _run_evaluation(config: Any, quiet: bool, *, resume: bool) -> dict[str, Any]:
    """Load the model and data a config names, evaluate, write summary and report."""
    import torch

    from advlab import data as datasets
    from advlab.evaluation import evaluate
    from advlab.report import write_report

    model, card, recorded = _load_model(config)
    name = config.dataset or recorded.get("name")
    if name is None:
        raise UsageError("no dataset: give --dataset (the model's sidecar records none)")
    path = config.data_path if config.dataset else recorded.get("path")
    options = dict(config.dataset_options) if config.dataset else dict(recorded.get("options", {}))
    if path is not None and not Path(path).exists():
        raise UsageError(f"dataset path {path} does not exist")
    if name not in datasets.DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(datasets.DATASETS)}")
    _log(f"loading {name} ...")
    dataset = datasets.load(name, path, **options)
    out = Path(config.out)
    _log(f"evaluating {card.get('source')} on {config.n} {config.split} samples of {name}; "
         f"writing {out}")
    torch.manual_seed(config.seed)  # attacks take generators; this only pins stray randomness
    evaluation = evaluate(
        model, dataset, config.attacks, config.eps, n=config.n, batch_size=config.batch_size,
        seed=config.seed, device=config.device, split=config.split, out_dir=out, resume=resume,
        progress=not quiet, model_card=card,
        config={"model": config.model, "model_factory": config.model_factory,
                "data_path": None if path is None else str(path), "dataset_options": options})
    report = write_report(out)
    summary = evaluation.summary
    _log(headline(summary))
    _log(f"report: {report}")
    failed = [c["name"] for c in summary["checks"]
              if not c["passed"] and c.get("severity") == "error"]
    warned = [c["name"] for c in summary["checks"]
              if not c["passed"] and c.get("severity") != "error"]
    if failed:
        _log(f"sanity checks FAILED: {', '.join(failed)} (see the report)")
    if warned:
        _log(f"sanity-check warnings: {', '.join(warned)} (see the report)")
    worst = {f"{w['norm']}={w['eps']:g}": round(w["robust_accuracy"], 6)
             for w in summary["worst_case"]}
    return {"command": "evaluate", "out": str(out), "report": str(report),
            "clean_accuracy": round(summary["clean_accuracy"], 6), "worst_case": worst,
            "checks_failed": failed, "checks_warned": warned,
            "seconds": summary["timing"]["seconds"], "seed": config.seed}


def _load_model(config: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(model, model card, the dataset the sidecar records). A factory runs only when named."""
    from advlab.models import load as load_model

    if config.model_factory is not None:
        import importlib

        module_name, _, function = config.model_factory.partition(":")
        if not function:
            raise UsageError(f"--model-factory {config.model_factory!r}: expected module:function")
        sys.path.insert(0, str(Path.cwd()))
        try:
            factory = getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as err:
            raise UsageError(f"--model-factory {config.model_factory!r}: {err}") from None
        finally:
            sys.path.pop(0)
        model = factory()
        return model.to(config.device).eval(), {"source": config.model_factory,
                                               "architecture": type(model).__name__}, {}
    folder = Path(config.model)
    if not folder.exists():
        raise UsageError(f"model {folder} does not exist (a folder written by `advlab train`)")
    if folder.is_file():
        raise UsageError(f"model {folder} is a file; give the folder holding model.safetensors "
                         "and advlab.json")
    model, sidecar = load_model(folder, device=config.device)
    card = {"source": str(folder), "architecture": sidecar["architecture"],
            "arguments": sidecar.get("arguments"), "defense": sidecar.get("defense"),
            "metrics": sidecar.get("metrics"), "seed": sidecar.get("seed"),
            "training": sidecar.get("training")}
    return model, card, dict(sidecar.get("dataset") or {})


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
    for row in summary["worst_case"]:
        lines.append(f"{'WORST CASE':<24} {row['norm'] + ' ' + format(row['eps'], 'g'):>8} "
                     f"{pct(row['robust_accuracy']):>10}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> dict[str, Any]:
    from advlab.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "summary.json").is_file():
        raise UsageError(f"{run_dir}: no summary.json (is it an `advlab evaluate` output folder?)")
    path = write_report(run_dir)
    _log(f"report: {path}")
    return {"command": "report", "report": str(path)}


def _attacks(args: argparse.Namespace) -> dict[str, Any]:
    from advlab.attacks import ATTACKS
    from advlab.evaluation import attack_parameters

    rows = []
    for name, spec in ATTACKS.items():
        knobs = {k: (None if p.default is p.empty else p.default)
                 for k, p in attack_parameters(name).items()}
        kind = "minimal-norm" if spec.minimal_norm else "fixed eps"
        _log(f"{name:<18} {','.join(spec.norms):<12} {kind:<13} "
             + " ".join(f"{k}={v}" for k, v in knobs.items()))
        rows.append({"name": name, "norms": list(spec.norms), "minimal_norm": spec.minimal_norm,
                     "knobs": {k: v if isinstance(v, (int, float, str, bool)) or v is None
                               else str(v) for k, v in knobs.items()}})
    return {"command": "attacks", "attacks": rows}


def _datasets(args: argparse.Namespace) -> dict[str, Any]:
    from advlab import data

    rows = []
    for name, spec in data.DATASETS.items():
        where = "embedded (scikit-learn)" if not spec.needs_path else "--data-path DIR"
        rows.append({"name": name, "input_shape": spec.input_shape, "data": where,
                     "description": spec.description})
        _log(f"{name:<10} {spec.input_shape:<14} {where:<24} {spec.description}")
    return {"command": "datasets", "datasets": rows}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advlab", description="Adversarial machine learning: attack, harden, explain and "
        "evaluate models on images and constrained tabular security data.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("datasets", help="list the datasets, their shapes and where the data comes "
                   "from").set_defaults(run=_datasets)

    train = sub.add_parser("train", help="train a zoo model and save weights plus sidecar")
    _training_options(train, require_out=True)
    train.add_argument("--dataset", required=True, help="dataset name (see `advlab datasets`)")
    train.add_argument("--data-path", type=Path, help="folder (or file) holding the data set")
    train.add_argument("--model", choices=("mlp", "small_cnn"), default="mlp")
    train.add_argument("--labels", choices=("binary", "5class"), default="binary",
                       help="NSL-KDD / KDD Cup 99 labels")
    train.add_argument("--upsample", action="store_true", help="digits: upsample 8x8 to 28x28")
    train.add_argument("--hidden", type=int, nargs="+", help="hidden widths (mlp) or the "
                       "dense width (small_cnn)")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--val-fraction", type=float, default=0.1,
                       help="share of the training set held out for model selection")
    train.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    train.add_argument("--device", default="cpu")
    train.set_defaults(run=_train)

    ev = sub.add_parser("evaluate", help="robust accuracy, curves, sanity checks and an HTML "
                        "report for a model against a set of attacks")
    ev.add_argument("--config", type=Path, help="TOML file with the settings below (flags win)")
    ev.add_argument("--model", help="model folder written by `advlab train`")
    ev.add_argument("--model-factory", help="module:function returning the model (runs code: "
                    "only when you name it)")
    ev.add_argument("--dataset", help="dataset name (default: the one the model was trained on)")
    ev.add_argument("--data-path", help="folder (or file) holding the data set")
    ev.add_argument("--split", choices=("test", "train"))
    ev.add_argument("--attack", action="append", metavar="NAME[:KEY=VALUE,...]",
                    help="an attack and its knobs, e.g. pgd:norm=l2,steps=40 (repeatable); "
                    "knobs are those of the attack's signature (see `advlab attacks`)")
    ev.add_argument("--eps", action="append", metavar="NORM=EPS[,EPS...]",
                    help="eps grid of one norm, e.g. linf=0.05,0.1 (repeatable)")
    ev.add_argument("--n", type=int, help="number of samples (default 500)")
    ev.add_argument("--batch-size", type=int)
    ev.add_argument("--seed", type=int)
    ev.add_argument("--device")
    ev.add_argument("--out", help="output folder (default runs/eval)")
    ev.add_argument("--resume", action="store_true",
                    help="continue an interrupted run from its last complete batch")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(run=_evaluate)

    rep = sub.add_parser("report", help="re-render report.html from a run's summary.json")
    rep.add_argument("run_dir", help="an `advlab evaluate` output folder")
    rep.set_defaults(run=_report)

    sub.add_parser("attacks", help="list the attacks, their norms and knobs").set_defaults(
        run=_attacks)

    demo = sub.add_parser("demo", help="the main job on the embedded digits data")
    _training_options(demo, require_out=False)
    demo.set_defaults(run=_demo)
    return parser


def _training_options(p: argparse.ArgumentParser, *, require_out: bool) -> None:
    p.add_argument("--out", type=Path, required=require_out, default=Path("runs/demo"),
                   help="output folder for the model (weights + advlab.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        _emit(args.run(args))
    except (UsageError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        if args.debug:
            raise
        message = str(err) if not isinstance(err, OSError) or not err.filename else \
            f"{err.filename}: {err.strerror}"
        print(f"advlab: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("advlab: interrupted", file=sys.stderr)
        return 130
    return 0

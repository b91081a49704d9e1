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
    args.dataset, args.data_path, args.model, args.upsample = "digits", None, "small_cnn", True
    args.labels, args.hidden, args.val_fraction, args.patience = "binary", None, 0.0, None
    args.epochs, args.lr, args.batch_size, args.device = 15, 2e-3, 64, "cpu"
    _log("advlab demo: the small CNN on scikit-learn's digits upsampled to 28x28 (embedded)")
    summary = _train(args)
    summary["command"] = "demo"
    summary["attacks"] = _demo_attacks(args)
    return summary


def _demo_attacks(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Attack the demo model with each white-box attack family and score them alike."""
    import math
    from functools import partial

    import torch

    from advlab import ThreatModel, attacks
    from advlab.attacks import targets
    from advlab.data import load
    from advlab.evaluation import score
    from advlab.models import load as load_model

    model, _ = load_model(args.out)
    data = load("digits", upsample=True, seed=args.seed)
    x, y = data.x_test[:200], data.y_test[:200]  # the first 200 test images keep it under a minute
    gen = torch.Generator().manual_seed(args.seed)
    target = targets.random(y, data.num_classes, generator=gen)
    runs = [
        ("FGSM", "linf", 0.1, attacks.fgsm, None),
        ("PGD-40", "linf", 0.1, partial(attacks.pgd, steps=40, generator=gen), None),
        ("PGD-40", "l2", 1.0, partial(attacks.pgd, steps=40, generator=gen), None),
        ("DeepFool", "l2", math.inf, attacks.deepfool, None),
        ("C&W L2 (5x100)", "l2", math.inf,
         partial(attacks.carlini_wagner_l2, binary_search_steps=5), None),
        ("JSMA (targeted)", "l0", math.inf, partial(attacks.jsma, gamma=0.2), target),
    ]
    _log(f"white-box attacks on the first {len(y)} test images:")
    _log(f"{'attack':<16} {'threat':<12} {'success':>8} {'robust acc':>10} "
         f"{'median L2':>9} {'median Linf':>11} {'median L0':>9} {'seconds':>8}")
    rows = []
    for name, norm, eps, attack, tgt in runs:
        threat = ThreatModel(norm, eps, data.domain)  # type: ignore[arg-type]
        start = time.perf_counter()
        kwargs = {} if tgt is None else {"target": tgt}
        x_adv = attack(model, x, y, threat, **kwargs)
        seconds = time.perf_counter() - start
        summary = score(model, x, y, x_adv, threat, target=tgt).summary()
        eps_text = "inf" if math.isinf(eps) else f"{eps:g}"
        _log(f"{name:<16} {norm + ' ' + eps_text:<12} {summary['success_rate']:>8.1%} "
             f"{summary['robust_accuracy']:>10.1%} {summary['median_l2']:>9.3f} "
             f"{summary['median_linf']:>11.3f} {summary['median_l0']:>9.0f} {seconds:>8.1f}")
        rows.append({"attack": name, "norm": norm, "eps": None if math.isinf(eps) else eps,
                     "seconds": round(seconds, 3), **{k: round(v, 6) for k, v in summary.items()}})
    return rows


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

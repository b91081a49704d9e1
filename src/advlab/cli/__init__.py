"""The ``advlab`` command line. Thin: it builds the objects a Python user would, calls one library
function, and writes the outputs. One module per group of commands: :mod:`.train` (train, demo),
:mod:`.evaluate` (evaluate, report, attacks), :mod:`.detect`, :mod:`.poison`,
:mod:`.blackbox` (substitute, transfer); shared helpers in :mod:`.common`.

Conventions: logs and progress go to stderr; one JSON summary line goes to stdout; a user error
prints one line and exits with code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advlab.cli import blackbox as blackbox_commands
from advlab.cli import detect as detect_command
from advlab.cli import explain as explain_commands
from advlab.cli import poison as poison_command
from advlab.cli import reproduce as reproduce_command
from advlab.cli.common import (
    COUNT,
    EXIT_USAGE,
    RATE,
    ArgumentParser,
    UsageError,
    emit,
    log,
    number,
    run_options,
)
from advlab.cli.evaluate import attacks as run_attacks
from advlab.cli.evaluate import evaluate as run_evaluate
from advlab.cli.evaluate import report as run_report
from advlab.cli.train import demo as run_demo
from advlab.cli.train import train as run_train

__all__ = ["EXIT_USAGE", "UsageError", "build_parser", "main"]


def datasets(args: argparse.Namespace) -> dict[str, Any]:
    from advlab import data

    rows = []
    for name, spec in data.DATASETS.items():
        where = "embedded (scikit-learn)" if not spec.needs_path else "--data-path DIR"
        rows.append({"name": name, "input_shape": spec.input_shape, "data": where,
                     "description": spec.description})
        log(f"{name:<10} {spec.input_shape:<14} {where:<24} {spec.description}")
    return {"command": "datasets", "datasets": rows}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="advlab", description="Adversarial machine learning: attack, harden, explain and "
        "evaluate models on images and constrained tabular security data.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("datasets", help="list the datasets, their shapes and where the data comes "
                   "from").set_defaults(run=datasets)

    train = sub.add_parser("train", help="train a zoo model and save weights plus sidecar")
    run_options(train, out="output folder for the model (weights + advlab.json)")
    scale_options(train, "continue an interrupted training from the checkpoint in --out")
    train.add_argument("--dataset", required=True, help="dataset name (see `advlab datasets`)")
    train.add_argument("--data-path", type=Path, help="folder (or file) holding the data set")
    train.add_argument("--model", choices=("mlp", "small_cnn", "xgboost", "lightgbm",
                                           "random-forest"), default="mlp",
                       help="a zoo network, or a tree ensemble (docs/trees.md)")
    train.add_argument("--trees", type=int, help="tree ensembles: number of trees (default 100)")
    train.add_argument("--depth", type=int, help="tree ensembles: maximum depth (default: "
                       "xgboost 6, lightgbm none (31 leaves), random-forest none)")
    train.add_argument("--labels", choices=("binary", "5class"), default="binary",
                       help="NSL-KDD / KDD Cup 99 labels")
    train.add_argument("--upsample", action="store_true", help="digits: upsample 8x8 to 28x28")
    train.add_argument("--hidden", type=COUNT, nargs="+", help="hidden widths (mlp) or the "
                       "dense width (small_cnn)")
    train.add_argument("--epochs", type=COUNT, default=10)
    train.add_argument("--lr", type=RATE, default=1e-3)
    train.add_argument("--batch-size", type=COUNT, default=128)
    train.add_argument("--val-fraction", type=number(float, 0, 1, high_open=True),
                       default=0.1,
                       help="share of the training set held out for model selection")
    train.add_argument("--patience", type=COUNT, help="early-stopping patience in epochs")
    defense = train.add_argument_group(
        "defenses", "adversarial training (pgd-at: Madry et al. 2018; fgsm-at: Wong et al. "
        "2020; trades: Zhang et al. 2019) or defensive distillation (Papernot et al. 2016); "
        "the sidecar records the defense and its parameters")
    defense.add_argument("--defense", choices=("none", "pgd-at", "fgsm-at", "trades",
                                               "distillation"), default="none")
    defense.add_argument("--eps", type=RATE, help="adversarial training: the attack budget")
    defense.add_argument("--norm", choices=("linf", "l2", "l1"),
                         help="adversarial training: the norm (default linf)")
    defense.add_argument("--constraints", choices=("domain", "box"),
                         help="adversarial training under the data set's Domain (default) or "
                         "its bounds only")
    defense.add_argument("--beta", type=number(float, 0),
                         help="TRADES: the robustness weight (default 6)")
    defense.add_argument("--mix", type=number(float, 0, 1),
                         help="pgd-at/fgsm-at: share of the loss on clean inputs (default 0)")
    defense.add_argument("--eps-warmup", type=number(int, 0),
                         help="adversarial training: ramp eps up over this many epochs")
    defense.add_argument("--temperature", type=RATE,
                         help="distillation: the temperature T (default 100, the paper's)")
    train.set_defaults(run=run_train)

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
    ev.add_argument("--suite", choices=("autoattack", "autoattack-plus", "autoattack-rand"),
                    help="add AutoAttack (standard, plus or rand) at every norm of the eps "
                    "grid, with its cascade in the report (--attack becomes optional)")
    ev.add_argument("--n", type=COUNT, help="number of samples (default 500)")
    ev.add_argument("--batch-size", type=COUNT)
    ev.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="run the gradient passes of FGSM/BIM/PGD through torch.compile "
                    "(opt-in; default off)")
    ev.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                    help="precision of those passes (default fp32); successes are always "
                    "decided and scored in float32")
    run_options(ev, out="output folder (default runs/eval)", required=False, seed=None,
                device=None)
    scale_options(ev, "continue an interrupted run from its last complete batches")
    ev.add_argument("--overwrite", action="store_true",
                    help="replace the run already in --out (refused otherwise)")
    ev.set_defaults(run=run_evaluate)

    rep = sub.add_parser("report", help="re-render report.html from a run's summary.json")
    rep.add_argument("run_dir", help="an `advlab evaluate` output folder")
    rep.set_defaults(run=run_report)

    sub.add_parser("attacks", help="list the attacks, their norms and knobs").set_defaults(
        run=run_attacks)

    detect_command.register(sub)
    explain_commands.register(sub)
    blackbox_commands.register(sub)
    poison_command.register(sub)
    reproduce_command.register(sub)

    demo = sub.add_parser("demo", help="the main job on the embedded digits data")
    run_options(demo, out="output folder: model/ and eval/ (default runs/demo)", required=False,
                default=Path("runs/demo"))
    demo.set_defaults(run=run_demo)
    return parser


def scale_options(p: argparse.ArgumentParser, resume_help: str) -> None:
    """``--workers N`` (the same command on N processes of this machine, under torchrun; see
    docs/scale.md) and ``--resume``."""
    p.add_argument("--workers", type=COUNT, default=1, metavar="N",
                   help="run on N processes of this machine under torchrun (default 1)")
    p.add_argument("--resume", action="store_true", help=resume_help)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a usage error, already printed as one line: return its code
        if stop.code == EXIT_USAGE:
            return EXIT_USAGE
        raise
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = argv  # what --workers hands to torchrun
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            result = args.run(args)
        if isinstance(result, int):  # the exit code of the processes torchrun launched
            return result
        if result is not None:  # None: a rank other than 0 of a torchrun run
            emit(result)
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


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """advlab's own notices (a resume that drops a line, ...) as one line each on stderr."""
    from advlab.evaluation.passes import PrecisionWarning
    from advlab.evaluation.store import ResumeWarning

    if issubclass(category, (ResumeWarning, PrecisionWarning)):
        print(f"advlab: {message}", file=sys.stderr, flush=True)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="",
              file=sys.stderr)

"""What every command shares: user errors, logging and the JSON line, loading data and models."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_USAGE = 2


class UsageError(ValueError):
    """A mistake in the command line or its inputs (exit code 2, no traceback)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(summary: dict[str, Any]) -> None:
    print(json.dumps(summary, sort_keys=True), flush=True)


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
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


def load_dataset(args: argparse.Namespace) -> Any:
    from advlab import data

    if args.dataset not in data.DATASETS:
        raise UsageError(f"unknown dataset {args.dataset!r}; known: {', '.join(data.DATASETS)}")
    spec = data.DATASETS[args.dataset]
    if spec.needs_path and args.data_path is None:
        raise UsageError(f"dataset {args.dataset!r} needs --data-path (the folder holding its "
                         "files; see `advlab datasets`)")
    log(f"loading {args.dataset} ...")
    return data.load(args.dataset, args.data_path, **dataset_options(args))

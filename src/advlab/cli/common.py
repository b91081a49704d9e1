"""What every command shares: user errors, logging and the JSON line, the options of a run
(seed, device, output folder, progress), loading data and models."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from advlab.errors import AdvlabError

EXIT_USAGE = 2


class UsageError(AdvlabError):
    """A mistake in the command line or its inputs (exit code 2, no traceback)."""


def _rank_zero() -> bool:
    """Under torchrun only rank 0 talks: the other ranks' logs and JSON line would repeat it."""
    return os.environ.get("RANK", "0") == "0"


def log(message: str) -> None:
    if _rank_zero():
        print(message, file=sys.stderr, flush=True)


def emit(summary: dict[str, Any]) -> None:
    if _rank_zero():
        print(json.dumps(summary, sort_keys=True), flush=True)


def run_options(p: argparse.ArgumentParser, *, out: str | None = "output folder",
                required: bool = True, default: Path | None = None, seed: int | None = 0,
                device: str | None = "cpu", quiet: bool = True) -> None:
    """The options every run shares: ``--out`` (``out`` is its help; ``None``: no such flag),
    ``--seed``, ``--device`` (auto, cpu, cuda, cuda:N) and ``--quiet`` (unless ``quiet`` is
    False). ``seed=None`` and ``device=None`` default to ``None``: a config file fills them."""
    if out is not None:
        p.add_argument("--out", type=Path, required=required, default=default, help=out)
    p.add_argument("--seed", type=SEED, default=seed)
    p.add_argument("--device", default=device, metavar="DEVICE",
                   help=f"auto, cpu, cuda or cuda:N (default {device or 'cpu'})")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bars")


def device_of(text: str | None, *, cpu_only: str | None = None) -> Any:
    """The :class:`torch.device` a ``--device`` flag names; a user error when it cannot be,
    or when it is not the CPU and the command (``cpu_only`` names it) runs on the CPU only."""
    from advlab.models.device import resolve_device

    try:
        device = resolve_device(text or "cpu")
    except ValueError as err:
        raise UsageError(f"--device: {err}") from None
    if cpu_only is not None and device.type != "cpu":
        raise UsageError(f"--device {text}: `advlab {cpu_only}` runs on the CPU only (its "
                         "library functions take no device yet); use --device cpu")
    return device


def model_and_data_options(p: argparse.ArgumentParser,
                           model_help: str = "model folder written by `advlab train`") -> None:
    """``--model`` (required), and the ``--dataset`` and ``--data-path`` that default to the data
    set the model's sidecar records."""
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--dataset", help="dataset name (default: the one the model was trained on)")
    p.add_argument("--data-path", help="folder (or file) holding the data set")


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


def recorded_dataset(name: str | None, path: str | Path | None, options: dict[str, Any],
                     recorded: dict[str, Any]) -> tuple[Any, str | Path | None, dict[str, Any]]:
    """The data set a command names, else the one a model's sidecar ``recorded``: returns
    ``(dataset, path, options)``; user errors name the missing or unknown piece."""
    from advlab import data

    if name is None:
        name, path, options = recorded.get("name"), recorded.get("path"), \
            dict(recorded.get("options") or {})
    if name is None:
        raise UsageError("no dataset: give --dataset (the model's sidecar records none)")
    if path is not None and not Path(path).exists():
        raise UsageError(f"dataset path {path} does not exist")
    if name not in data.DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(data.DATASETS)}")
    log(f"loading {name} ...")
    return data.load(name, path, **options), path, dict(options)


def load_model(config: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
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


def attack_from_flag(text: str, norm: str) -> tuple[Any, dict[str, Any]]:
    """A configured attack (``functools.partial`` of the registered function) and its
    description ``{"name", "norm", knobs...}``, from ``NAME[:KEY=VALUE,...]`` (the norm of the
    command's threat model unless the flag gives one)."""
    from functools import partial

    from advlab.evaluation.config import parse_attack_flag
    from advlab.evaluation.runs import make_run

    entry = parse_attack_flag(text)
    entry.setdefault("norm", norm)
    try:
        run = make_run(entry)
    except ValueError as err:
        raise UsageError(f"attack {text!r} under --norm {norm}: {err}") from None
    return partial(run.spec.fn, **run.params), {"name": run.name, "norm": run.norm, **run.params}


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the CLI's convention for user errors: one line on stderr naming the flag,
    exit code 2 (argparse's own prints the usage too). Sub-command parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        import re

        message = re.sub(r"^argument (\S+): must ", r"\1 must ", message)
        self.exit(EXIT_USAGE, f"advlab: error: {message} (see `{self.prog} --help`)\n")


def number(kind: type[int] | type[float] = int, low: float | None = None,
           high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type`` for a finite number in a range, checked when the command line is
    parsed, so that ``--eps -0.1`` fails before any work with ``argument --eps: must be > 0``."""
    from advlab.attacks.knobs import Range

    valid = Range(low, high, low_open, high_open)
    what = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not valid.contains(value):
            raise argparse.ArgumentTypeError(f"must {valid.requirement()}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


COUNT = number(int, 1)  # a count of things: >= 1
SEED = number(int, 0)  # seeds are non-negative (numpy's SeedSequence refuses the others)
RATE = number(float, 0, low_open=True)  # a learning rate, a budget: > 0


def number_list(kind: type[int] | type[float] = float, low: float | None = None, *,
                low_open: bool = False) -> Callable[[str], list[Any]]:
    """An argparse ``type`` for comma-separated numbers, each checked like :func:`number`."""
    one = number(kind, low, low_open=low_open)

    def parse(text: str) -> list[Any]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
        try:
            return [one(s) for s in items]
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{err} (in {text!r})") from None

    parse.__name__ = "list"
    return parse


def check_model_fits(model: Any, source: str, recorded: dict[str, Any], dataset: Any,
                     device: str = "cpu") -> None:
    """The one check where a model and a data set meet, before any work: the input shape the
    sidecar records against the data's (:func:`advlab.models.io.check_input_shape`), then one
    forward pass on one test input (for models without a sidecar, e.g. a factory) and its
    number of logits against the data's classes. A data set other than the one the model was
    trained on, with the same shapes, is only logged."""
    import torch

    from advlab.models.io import check_input_shape

    try:
        check_input_shape(recorded, dataset.input_shape, dataset.name, model=source)
    except ValueError as err:
        raise UsageError(str(err)) from None
    x = dataset.x_test[:1].to(device)
    try:
        with torch.no_grad():
            logits = model(x)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"model {source} cannot take {dataset.name} inputs of shape "
                         f"{tuple(dataset.input_shape)}: {first}") from None
    classes = logits.shape[-1] if logits.dim() == 2 else None
    if classes != dataset.num_classes:
        returns = f"{classes} logits" if classes is not None else \
            f"outputs of shape {tuple(logits.shape)}"
        raise UsageError(f"model {source} returns {returns}, but {dataset.name} has "
                         f"{dataset.num_classes} classes (other --labels?)")
    if recorded.get("name") not in (None, dataset.name):
        log(f"note: model {source} was trained on {recorded['name']}; evaluating it on "
            f"{dataset.name} (same input shape)")


def evaluation_preflight(config: Any, model: Any, card: dict[str, Any],
                         recorded: dict[str, Any], dataset: Any) -> None:
    """What `advlab evaluate` checks once the model and data are loaded, before it prints its
    plan or writes a file: the model fits the data, ``n`` fits the split; then it logs which
    attack runs at which norm of the grid and which pairs are skipped."""
    from advlab.evaluation.runs import build_runs, coverage_line, norm_coverage

    check_model_fits(model, str(card.get("source")), recorded, dataset, config.device)
    size = len(dataset.y_test if config.split == "test" else dataset.y_train)
    if config.n is not None and config.n > size:
        raise UsageError(f"n = {config.n} (--n, or n in the config file) exceeds the {size} "
                         f"samples of the {config.split} split of {dataset.name}")
    log(coverage_line(norm_coverage(build_runs(config.attacks), config.eps)))

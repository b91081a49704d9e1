"""``advlab poison``: poison a training set, train on it, and report what it cost the learner.

* ``--attack label-flip`` (``--mode random|adversarial``) and ``--attack svm-injection`` work on
  a two-class subset (``--classes A,B``, optional for two-class data) against a scikit-learn SVC;
  the curve is the SVC's test error against the flip rate or the number of injected points.
* ``--attack backdoor`` stamps a trigger (an image patch, or ``--trigger-features NAME=VALUE,...``
  for tabular data, checked against the Domain), trains a zoo model on the poisoned set and on
  the clean one, and reports clean accuracy and backdoor success; ``--defense
  activation-clustering`` then filters the training set and retrains.

Writes ``poisoned.safetensors`` (tensors ``x``, ``y``, ``indices``), ``summary.json`` (schema
``advlab.poisoning/1``) and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advlab.cli.common import (
    COUNT,
    RATE,
    UsageError,
    device_of,
    load_dataset,
    log,
    number,
    run_options,
)

if TYPE_CHECKING:
    import torch

ATTACKS = ("label-flip", "svm-injection", "backdoor")


def register(sub: Any) -> None:
    p = sub.add_parser("poison", help="poison a training set (label flipping, SVM injection, "
                       "backdoor), train on it and write the poisoned data and a report")
    p.add_argument("--attack", required=True, choices=ATTACKS)
    p.add_argument("--dataset", required=True, help="dataset name (see `advlab datasets`)")
    p.add_argument("--data-path", type=Path, help="folder (or file) holding the data set")
    p.add_argument("--labels", choices=("binary", "5class"), default="binary",
                   help="NSL-KDD / KDD Cup 99 labels")
    p.add_argument("--upsample", action="store_true", help="digits: upsample 8x8 to 28x28")
    p.add_argument("--rate", type=number(float, 0, 1), default=0.05,
                   help="poisoned fraction of the training set (label-flip, backdoor)")
    p.add_argument("--seeds", type=COUNT, default=1, help="seeds for the curve (SVM attacks)")
    svm = p.add_argument_group("SVM attacks (label-flip, svm-injection)")
    svm.add_argument("--classes", help="the two classes to keep, e.g. 7,1")
    svm.add_argument("--n-train", type=COUNT, default=200, help="training rows (default 200)")
    svm.add_argument("--n-val", type=COUNT, default=500,
                     help="the attacker's validation rows, drawn from the training split")
    svm.add_argument("--kernel", choices=("linear", "rbf"), default="linear")
    svm.add_argument("--mode", choices=("random", "adversarial"), default="adversarial",
                     help="label-flip: random or greedy adversarial flips")
    svm.add_argument("--points", type=COUNT, default=5, help="svm-injection: points to inject")
    bd = p.add_argument_group("backdoor")
    bd.add_argument("--target", type=number(int, 0), default=0,
                    help="the class triggered inputs go to")
    bd.add_argument("--patch-size", type=COUNT, default=3, help="image trigger: patch size")
    bd.add_argument("--trigger-features", metavar="NAME=VALUE,...",
                    help="tabular trigger: features and values, e.g. urgent=1,flag=SH=1")
    bd.add_argument("--model", choices=("mlp", "small_cnn"), help="default: small_cnn for "
                    "images, mlp otherwise")
    bd.add_argument("--epochs", type=COUNT, default=10)
    bd.add_argument("--lr", type=RATE, default=2e-3)
    bd.add_argument("--defense", choices=("none", "activation-clustering"), default="none")
    run_options(p)
    p.set_defaults(run=poison)


def poison(args: argparse.Namespace) -> dict[str, Any]:
    device_of(args.device, cpu_only="poison")
    ds = load_dataset(args)
    if args.attack == "backdoor":
        summary, poisoned = _backdoor(args, ds)
    else:
        summary, poisoned = _svm_attack(args, ds)
    args.out.mkdir(parents=True, exist_ok=True)  # only once the settings proved valid
    from safetensors.torch import save_file

    from advlab.report.poisoning import SCHEMA, write_poisoning_report

    save_file({"x": poisoned.x.contiguous(), "y": poisoned.y.contiguous(),
               "indices": poisoned.indices.contiguous()}, str(args.out / "poisoned.safetensors"),
              metadata={"attack": args.attack, "kind": poisoned.kind,
                        "dataset": args.dataset, "n_poisoned": str(poisoned.n_poisoned)})
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if k not in ("run", "debug")}
    summary = {"schema": SCHEMA, "attack": args.attack, "dataset": args.dataset,
               "config": config, **summary}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    report = write_poisoning_report(args.out)
    log(f"poisoned data: {args.out / 'poisoned.safetensors'}\nreport: {report}")
    return {"command": "poison", "attack": args.attack, "out": str(args.out),
            **{k: v for k, v in summary["metrics"].items()}}


def _two_classes(args: argparse.Namespace, ds: Any) -> tuple[torch.Tensor, ...]:
    if args.classes:
        try:
            a, b = (int(c) for c in args.classes.split(","))
        except ValueError:
            raise UsageError(f"--classes must be two class indices like 7,1, got "
                             f"{args.classes!r}") from None
    elif ds.num_classes == 2:
        a, b = 1, 0
    else:
        raise UsageError(f"{args.dataset} has {ds.num_classes} classes: choose two with "
                         "--classes A,B")
    for c in (a, b):
        if not 0 <= c < ds.num_classes or a == b:
            raise UsageError(f"--classes: need two different classes in [0, {ds.num_classes}), "
                             f"got {args.classes}")

    def keep(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = (y == a) | (y == b)
        return x[m].flatten(1), y[m]

    x, y = keep(ds.x_train, ds.y_train)
    xt, yt = keep(ds.x_test, ds.y_test)
    if args.n_train + args.n_val > x.shape[0]:
        raise UsageError(f"--n-train + --n-val = {args.n_train + args.n_val} but the two classes "
                         f"have {x.shape[0]} training rows")
    return x, y, xt, yt


def _svm_attack(args: argparse.Namespace, ds: Any) -> tuple[dict[str, Any], Any]:
    from advlab.evaluation.poisoning_study import svm_poisoning_study

    x, y, xt, yt = _two_classes(args, ds)
    return svm_poisoning_study(x, y, xt, yt, attack=args.attack, mode=args.mode,
                               kernel=args.kernel, n_train=args.n_train, n_val=args.n_val,
                               rate=args.rate, points=args.points, seed=args.seed,
                               seeds=args.seeds, progress=not args.quiet, log=log)


def _trigger(args: argparse.Namespace, ds: Any) -> Any:
    from advlab.poisoning import FeatureTrigger, PatchTrigger

    if args.trigger_features:
        values: dict[str, float] = {}
        for item in args.trigger_features.split(","):
            name, sep, value = item.rpartition("=")
            if not sep or not name:
                raise UsageError(f"--trigger-features: expected NAME=VALUE, got {item!r}")
            try:
                values[name] = float(value)
            except ValueError:
                raise UsageError(f"--trigger-features: {item!r}: {value!r} is not a number") \
                    from None
        try:
            return FeatureTrigger.by_name(ds.domain, values)
        except ValueError as err:
            raise UsageError(f"--trigger-features: {err}") from None
    if len(ds.input_shape) != 3:
        raise UsageError(f"{args.dataset} is tabular: give --trigger-features NAME=VALUE,...")
    return PatchTrigger(size=args.patch_size)


def _backdoor(args: argparse.Namespace, ds: Any) -> tuple[dict[str, Any], Any]:
    from advlab.evaluation.poisoning_study import backdoor_study

    if not 0 <= args.target < ds.num_classes:
        raise UsageError(f"--target must be a class in [0, {ds.num_classes}), got {args.target}")
    return backdoor_study(ds, _trigger(args, ds), args.target, rate=args.rate,
                          architecture=args.model, epochs=args.epochs, lr=args.lr,
                          defense=args.defense, seed=args.seed, progress=not args.quiet,
                          log=log)

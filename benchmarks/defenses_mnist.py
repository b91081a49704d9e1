"""Adversarial training on MNIST (small_cnn, L∞ eps 0.3) and NSL-KDD (MLP, constraint-aware L∞ 0.1).

One method per invocation, so long trainings run one at a time; every run merges its figures
into the ``--out`` JSON under ``"<dataset>/<method>"`` and saves the model with
:func:`advlab.models.save` (sidecar with ``defense=defense_record(...)``) under ``--save-dir``.

    python benchmarks/defenses_mnist.py --mnist /work/shared/data/mnist --method pgd-at \\
        --epochs 20 --out runs/defenses/results.json
    python benchmarks/defenses_mnist.py --nsl-kdd /work/shared/data/nsl-kdd --method standard \\
        --epochs 20 --out runs/defenses/results.json

Robust accuracy is scored by :func:`advlab.scoring.score` (fooled *and* inside ball ∩ Domain)
on the whole test set (or its first ``--eval-n`` rows), under PGD-``--eval-steps`` (step
2.5·eps/steps, random start, ``--eval-restarts``, early stop) and, as a gradient-masking check,
FGSM. Model selection uses a held-out validation split of the training set, never the test set.

Fast FGSM-AT as Wong, Rice, Kolter (ICLR 2020) run it on MNIST: ``--method fgsm-at`` (FGSM
from a uniform random start, step 1.25·eps), ``--schedule cyclic --optimizer adam --lr 5e-3``
(the learning rate rises linearly from 0 to 5e-3 and back to 0), and ``--patience 1``: the PGD
check, PGD-10 robust accuracy on the ``--val`` held-out rows after each epoch; training stops
at the first epoch that does not improve it (catastrophic overfitting makes it collapse within
an epoch) and the best epoch's weights are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from advlab.attacks import fgsm, pgd
from advlab.data import load
from advlab.data.base import Dataset
from advlab.defenses import adversarial_train, defense_record
from advlab.models import build, fit, save
from advlab.scoring import score
from advlab.threat import ThreatModel

ROOT = Path(__file__).resolve().parents[1]


def robust_accuracy(model: torch.nn.Module, dataset: Dataset, threat: ThreatModel, attack: Any,
                    *, seed: int, batch_size: int = 500, label: str = "") -> dict[str, float]:
    """Clean and robust accuracy of ``model`` on the whole test split under ``attack``."""
    x_all, y_all = dataset.test
    gen = torch.Generator().manual_seed(seed)
    clean = robust = 0
    t0 = time.perf_counter()
    for start in tqdm(range(0, len(y_all), batch_size), desc=f"eval {label}", file=sys.stderr,
                      leave=False):
        x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
        kwargs = {"generator": gen} if "generator" in _knobs(attack) else {}
        s = score(model, x, y, attack(model, x, y, threat, **kwargs), threat)
        clean += int(s.clean_correct.sum())
        robust += int((s.clean_correct & ~s.success).sum())
    n = len(y_all)
    return {"clean_accuracy": clean / n, "robust_accuracy": robust / n, "n": n,
            "seconds": round(time.perf_counter() - t0, 1)}


def _knobs(attack: Any) -> set[str]:
    import inspect

    return set(inspect.signature(attack).parameters)


def split_val(dataset: Dataset, n_val: int, seed: int) -> tuple[tuple[Any, Any], Any]:
    order = torch.randperm(len(dataset.y_train), generator=torch.Generator().manual_seed(seed))
    x, y = dataset.train
    val = (x[order[:n_val]], y[order[:n_val]]) if n_val else None
    return (x[order[n_val:]], y[order[n_val:]]), val


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mnist", type=Path, help="folder of the MNIST IDX files")
    src.add_argument("--nsl-kdd", type=Path, help="folder of the NSL-KDD text files")
    p.add_argument("--method", choices=["standard", "pgd-at", "fgsm-at", "trades"],
                   required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--eps", type=float, help="default: 0.3 (MNIST), 0.1 (NSL-KDD)")
    p.add_argument("--train-steps", type=int, default=10, help="PGD/TRADES inner steps")
    p.add_argument("--train-step-size", type=float,
                   help="inner step size (default: 2.5·eps/steps; FGSM-AT 1.25·eps)")
    p.add_argument("--eps-warmup", type=int, default=0, help="epochs of linear eps ramp")
    p.add_argument("--tag", default="", help="suffix of the result key and model folder")
    p.add_argument("--beta", type=float, default=6.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--channels", type=int, nargs=2, default=(32, 64), help="small_cnn widths")
    p.add_argument("--hidden", type=int, nargs="+", help="small_cnn dense / mlp hidden sizes")
    p.add_argument("--val", type=int, default=1000, help="held-out training samples")
    p.add_argument("--eval-steps", type=int, default=40)
    p.add_argument("--eval-restarts", type=int, default=1)
    p.add_argument("--eval-n", type=int, help="score the first N test rows (default: all)")
    p.add_argument("--schedule", choices=["cosine", "cyclic", "piecewise"],
                   help="per-batch learning-rate schedule (default: constant)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without better PGD-10 validation accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-dir", type=Path, default=ROOT / "runs" / "defenses")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "defenses" / "results.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    name = "mnist" if args.mnist else "nsl-kdd"
    data_path = args.mnist or args.nsl_kdd
    dataset = load(name, data_path)
    if args.eval_n is not None:
        dataset = dataclasses.replace(dataset, x_test=dataset.x_test[:args.eval_n],
                                      y_test=dataset.y_test[:args.eval_n])
    eps = args.eps if args.eps is not None else (0.3 if name == "mnist" else 0.1)
    threat = ThreatModel("linf", eps, dataset.domain)
    if name == "mnist":
        architecture = "small_cnn"
        arguments: dict[str, Any] = {"in_shape": list(dataset.input_shape),
                                     "classes": dataset.num_classes,
                                     "channels": list(args.channels),
                                     "hidden": (args.hidden or [128])[0]}
    else:
        architecture = "mlp"
        arguments = {"in_features": math.prod(dataset.input_shape),
                     "classes": dataset.num_classes, "hidden": args.hidden or [256, 256]}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = build(architecture, **arguments)
    train, val = split_val(dataset, args.val, args.seed)

    t0 = time.perf_counter()
    record: dict[str, Any] | None = None
    if args.method == "standard":
        history = fit(model, train, val, epochs=args.epochs, lr=args.lr,
                      batch_size=args.batch_size, seed=args.seed)
    else:
        from advlab.defenses.adversarial_training import trades_kl

        steps, size = args.train_steps, {"step_size": args.train_step_size}
        attack = {"pgd-at": functools.partial(pgd, steps=steps, early_stop=False, **size),
                  "fgsm-at": None if args.train_step_size is None
                  else functools.partial(fgsm, random_start=True, **size),
                  "trades": functools.partial(trades_kl, steps=steps, **size)}[args.method]
        knobs = {"attack": attack, "epochs": args.epochs, "lr": args.lr,
                 "batch_size": args.batch_size, "beta": args.beta, "mix": 0.0,
                 "eps_warmup": args.eps_warmup, "seed": args.seed,
                 "optimizer": args.optimizer, "schedule": args.schedule,
                 "patience": args.patience}
        history = adversarial_train(model, train, threat, method=args.method, val=val,
                                    **knobs)
        record = defense_record(args.method, threat, **knobs,
                                val_attack=functools.partial(pgd, steps=10, early_stop=True))
    train_seconds = time.perf_counter() - t0
    model.eval()

    pgd_eval = functools.partial(pgd, steps=args.eval_steps, restarts=args.eval_restarts,
                                 early_stop=True)
    result_pgd = robust_accuracy(model, dataset, threat, pgd_eval, seed=args.seed,
                                 label=f"PGD-{args.eval_steps}")
    result_fgsm = robust_accuracy(model, dataset, threat, fgsm, seed=args.seed, label="FGSM")
    command = "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:]) if argv is None \
        else "python benchmarks/defenses_mnist.py " + " ".join(argv)
    metrics = {"clean_accuracy": result_pgd["clean_accuracy"],
               f"pgd{args.eval_steps}_robust_accuracy": result_pgd["robust_accuracy"],
               "fgsm_robust_accuracy": result_fgsm["robust_accuracy"]}
    entry = {"dataset": name, "method": args.method, "eps": eps, "norm": "linf",
             "architecture": architecture, "arguments": arguments, "train_size": len(train[1]),
             "val_size": args.val, "epochs": args.epochs, "threads": args.threads,
             "train_seconds": round(train_seconds, 1), "metrics": metrics,
             "eval": {"pgd": {"steps": args.eval_steps, "step_size": 2.5 * eps / args.eval_steps,
                              "restarts": args.eval_restarts, "random_start": True,
                              "early_stop": True, **result_pgd},
                      "fgsm": result_fgsm},
             "defense": record, "history": history.as_dict(), "command": command}

    key = f"{name}/{args.method}{args.tag}"
    folder = args.save_dir / f"{name}-{args.method}{args.tag}"
    save(model, folder, architecture=architecture, arguments=arguments,
         dataset={"name": dataset.name, "path": str(data_path), "options": {},
                  "info": dataset.info, "input_shape": list(dataset.input_shape)},
         class_names=list(dataset.class_names), metrics=metrics,
         training={k: entry[k] for k in ("epochs", "train_size", "val_size", "train_seconds")},
         history=history.as_dict(), seed=args.seed, defense=record)
    entry["model"] = str(folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[key] = entry
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"key": key, "train_seconds": entry["train_seconds"],
                      **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

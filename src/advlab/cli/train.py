"""`advlab train` (standard training, and the defenses) and `advlab demo`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from advlab.cli.common import dataset_options, load_dataset, log
from advlab.cli.evaluate import run_evaluation


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab.models import save, train_classifier

    torch.manual_seed(args.seed)  # the CLI is the only place that seeds globally; recorded below
    dataset = load_dataset(args)
    log(f"{dataset.name}: {len(dataset.y_train)} train / {len(dataset.y_test)} test, inputs "
         f"{dataset.input_shape}, {dataset.num_classes} classes")
    start = time.perf_counter()
    trained = train_classifier(
        dataset, args.model, hidden=tuple(args.hidden) if args.hidden else None,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        val_fraction=args.val_fraction, patience=args.patience, device=args.device,
        progress=not args.quiet)
    seconds = time.perf_counter() - start
    accuracy = trained.metrics["test_accuracy"]
    log(f"test accuracy: {accuracy:.2%} ({trained.settings['epochs_run']} epochs, "
         f"{seconds:.1f} s)")
    save(trained.model.cpu(), args.out, architecture=trained.architecture,
         arguments=trained.arguments,
         dataset={"name": dataset.name, "path": None if args.data_path is None
                  else str(args.data_path), "options": dataset_options(args),
                  "info": dataset.info, "input_shape": list(dataset.input_shape)},
         class_names=list(dataset.class_names), metrics=trained.metrics,
         training=trained.settings, history=trained.history.as_dict(), seed=args.seed)
    log(f"wrote {args.out}")
    return {"command": "train", "dataset": dataset.name, "model": args.model, "out": str(args.out),
            "test_accuracy": round(accuracy, 6), "seconds": round(seconds, 3), "seed": args.seed}


def demo(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or reuse) the digits CNN, then evaluate it: the README's `make demo`."""
    from advlab.models.io import SIDECAR, read_sidecar

    model_dir, eval_dir = args.out / "model", args.out / "eval"
    args.dataset, args.data_path, args.model, args.upsample = "digits", None, "small_cnn", True
    args.labels, args.hidden, args.val_fraction, args.patience = "binary", None, 0.0, None
    args.epochs, args.lr, args.batch_size, args.device = 15, 2e-3, 64, "cpu"
    args.test_size = 0.3  # 540 test images, so that the evaluation can take 500 of them
    log("advlab demo: the small CNN on scikit-learn's digits upsampled to 28x28 (embedded)")
    reuse = (model_dir / SIDECAR).is_file() and read_sidecar(model_dir).get("seed") == args.seed
    if reuse:
        log(f"reusing the model in {model_dir} (delete it to train again)")
        trained = {"out": str(model_dir), "reused": True}
    else:
        out, args.out = args.out, model_dir
        trained = train(args)
        args.out = out
    settings = {
        "model": str(model_dir), "n": 500, "batch_size": 250, "seed": args.seed,
        "out": str(eval_dir),
        "eps": {"linf": [0.02, 0.05, 0.1, 0.2], "l2": [0.5, 1.0, 1.5, 2.0, 3.0]},
        "attack": [{"name": "fgsm"}, {"name": "pgd", "steps": 40},
                   {"name": "deepfool"},
                   {"name": "carlini_wagner_l2", "binary_search_steps": 5, "steps": 100}]}
    from advlab.evaluation import config as evaluation_config

    summary = run_evaluation(evaluation_config.build(settings, {}, "demo"), args.quiet,
                              resume=False)
    summary.update(command="demo", training=trained)
    return summary

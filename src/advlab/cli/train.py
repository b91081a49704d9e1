"""`advlab train` (standard training, and the defenses) and `advlab demo`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from advlab.cli.common import UsageError, dataset_options, device_of, load_dataset, log
from advlab.cli.evaluate import run_evaluation
from advlab.cli.launch import check_workers, torchrun

CHECKPOINT = "checkpoint"


def train(args: argparse.Namespace) -> dict[str, Any] | int | None:
    """Standard training, or one of the defenses (``--defense``), saved with its sidecar.
    With ``--workers N`` (or under torchrun) the training is data-parallel; a checkpoint is
    written after every epoch into ``--out``/checkpoint, and ``--resume`` continues from it."""
    from advlab.models import distributed

    defense = getattr(args, "defense", None) or "none"
    check_defense_options(args, defense)
    device = device_of(args.device)
    check_workers(args.workers, device)
    if defense == "distillation" and (args.resume or args.workers > 1 or
                                      distributed.launched()):
        raise UsageError("--defense distillation runs on one process and keeps no checkpoint: "
                         "drop --resume and --workers")
    if args.model in ("xgboost", "lightgbm", "random-forest") and (
            args.resume or args.workers > 1 or distributed.launched()):
        raise UsageError(f"--model {args.model}: tree ensembles train on one process and keep "
                         "no checkpoint: drop --resume and --workers")
    if args.workers > 1 and not distributed.launched():
        return torchrun(args.argv, args.workers)
    with distributed.process_group(device) as args.device:
        return _train(args, defense)


def _train(args: argparse.Namespace, defense: str) -> dict[str, Any] | None:
    import shutil

    import torch

    from advlab.models import distributed, save
    from advlab.models.checkpoint import has_checkpoint

    torch.manual_seed(args.seed)  # the CLI is the only place that seeds globally; recorded below
    dataset = load_dataset(args)
    log(f"{dataset.name}: {len(dataset.y_train)} train / {len(dataset.y_test)} test, inputs "
        f"{dataset.input_shape}, {dataset.num_classes} classes")
    if args.model in ("xgboost", "lightgbm", "random-forest"):
        return _trees(args, dataset, defense)
    args.checkpoint = args.out / CHECKPOINT
    if args.resume and not has_checkpoint(args.checkpoint):
        log(f"advlab: nothing to resume in {args.checkpoint} (no complete checkpoint), starting")
    elif args.resume:
        log(f"resuming from the checkpoint in {args.checkpoint}")
    start = time.perf_counter()
    if defense == "none":
        trained = _standard(args, dataset)
    elif defense == "distillation":
        trained = _distilled(args, dataset)
    else:
        trained = _adversarial(args, dataset, defense)
    seconds = time.perf_counter() - start
    if distributed.rank() != 0:
        return None
    model, architecture, arguments, metrics, extra = trained
    accuracy = metrics["test_accuracy"]
    log(f"test accuracy: {accuracy:.2%} ({seconds:.1f} s" +
        ("" if defense == "none" else f", defense {defense}") + ")")
    save(model.cpu(), args.out, architecture=architecture, arguments=arguments,
         dataset=_dataset_record(args, dataset), class_names=list(dataset.class_names),
         metrics=metrics, seed=args.seed, **extra)
    shutil.rmtree(args.checkpoint, ignore_errors=True)  # the model is saved: nothing to resume
    log(f"wrote {args.out}")
    out = {"command": "train", "dataset": dataset.name, "model": args.model,
           "out": str(args.out), "test_accuracy": round(accuracy, 6),
           "seconds": round(seconds, 3), "seed": args.seed,
           "workers": distributed.world_size()}
    if defense != "none":
        out["defense"] = defense
    return out


def _dataset_record(args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    return {"name": dataset.name, "path": None if args.data_path is None else str(args.data_path),
            "options": dataset_options(args), "info": dataset.info,
            "input_shape": list(dataset.input_shape)}


def _trees(args: argparse.Namespace, dataset: Any, defense: str) -> dict[str, Any]:
    """A tree ensemble (advlab.trees), saved in its library's format with the sidecar."""
    from advlab.cli.common import UsageError
    from advlab.trees.io import train_and_save

    if defense != "none":
        raise UsageError(f"--defense {defense} trains networks; for tree ensembles use "
                         "advlab.trees.defense.augmented_training (docs/trees.md)")
    out = train_and_save(dataset, args.model, args.out, n_estimators=args.trees,
                         max_depth=args.depth, seed=args.seed,
                         dataset_record=_dataset_record(args, dataset))
    log(f"test accuracy: {out['test_accuracy']:.2%} ({out['seconds']:.1f} s); wrote {args.out}")
    return {"command": "train", **out}


def check_defense_options(args: argparse.Namespace, defense: str) -> None:
    """Options of one defense given to another are mistakes, not silently ignored."""
    adversarial = defense in ("pgd-at", "fgsm-at", "trades")
    given = {name for name in ("eps", "norm", "beta", "mix", "eps_warmup", "temperature",
                               "constraints") if getattr(args, name, None) is not None}
    allowed = {"pgd-at": {"eps", "norm", "mix", "eps_warmup", "constraints"},
               "fgsm-at": {"eps", "norm", "mix", "eps_warmup", "constraints"},
               "trades": {"eps", "norm", "beta", "eps_warmup", "constraints"},
               "distillation": {"temperature"}, "none": set()}[defense]
    wrong = sorted(given - allowed)
    if wrong:
        flags = ", ".join("--" + w.replace("_", "-") for w in wrong)
        raise UsageError(f"{flags}: not an option of --defense {defense}")
    if adversarial and args.eps is None:
        raise UsageError(f"--defense {defense} needs --eps (the attack budget to train against)")


def _standard(args: argparse.Namespace, dataset: Any) -> tuple[Any, ...]:
    from advlab.models import train_classifier

    trained = train_classifier(
        dataset, args.model, hidden=tuple(args.hidden) if args.hidden else None,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        val_fraction=args.val_fraction, patience=args.patience, device=args.device,
        progress=not args.quiet, checkpoint=args.checkpoint, resume=args.resume)
    return (trained.model, trained.architecture, trained.arguments, trained.metrics,
            {"training": trained.settings, "history": trained.history.as_dict()})


def _distilled(args: argparse.Namespace, dataset: Any) -> tuple[Any, ...]:
    from advlab.defenses import distill

    distilled = distill(dataset, args.model, temperature=args.temperature or 100.0,
                        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                        hidden=tuple(args.hidden) if args.hidden else None,
                        val_fraction=args.val_fraction, seed=args.seed, device=args.device,
                        progress=not args.quiet)
    return (distilled.model, distilled.architecture, distilled.arguments, distilled.metrics,
            {"defense": distilled.record(), "training": distilled.settings,
             "history": {"teacher": distilled.teacher_history.as_dict(),
                         "student": distilled.student_history.as_dict()}})


def _adversarial(args: argparse.Namespace, dataset: Any, method: str) -> tuple[Any, ...]:
    from advlab import ThreatModel
    from advlab.defenses import train_robust_classifier

    domain = dataset.domain if (args.constraints or "domain") == "domain" else \
        dataset.domain.box()
    threat = ThreatModel(args.norm or "linf", args.eps, domain)
    params: dict[str, Any] = {"epochs": args.epochs, "lr": args.lr,
                              "batch_size": args.batch_size, "seed": args.seed,
                              "eps_warmup": args.eps_warmup or 0}
    params.update({"beta": args.beta if args.beta is not None else 6.0} if method == "trades"
                  else {"mix": args.mix if args.mix is not None else 0.0})
    trained = train_robust_classifier(
        dataset, args.model, threat, method=method,  # type: ignore[arg-type]
        hidden=tuple(args.hidden) if args.hidden else None, val_fraction=args.val_fraction,
        device=args.device, progress=not args.quiet, checkpoint=args.checkpoint,
        resume=args.resume, **params)
    settings = dict(trained.settings)
    return (trained.model, trained.architecture, trained.arguments, trained.metrics,
            {"defense": settings.pop("defense"), "history": trained.history.as_dict(),
             "training": settings})


def demo(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or reuse) the digits CNN, then evaluate it: the README's `make demo`."""
    from advlab.models.io import SIDECAR, read_sidecar

    model_dir, eval_dir = args.out / "model", args.out / "eval"
    args.dataset, args.data_path, args.model, args.upsample = "digits", None, "small_cnn", True
    args.labels, args.hidden, args.val_fraction, args.patience = "binary", None, 0.0, None
    args.epochs, args.lr, args.batch_size = 15, 2e-3, 64
    args.defense, args.workers, args.resume = "none", 1, False
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
        "out": str(eval_dir), "device": str(device_of(args.device)),
        "eps": {"linf": [0.02, 0.05, 0.1, 0.2], "l2": [0.5, 1.0, 1.5, 2.0, 3.0]},
        "attack": [{"name": "fgsm"}, {"name": "pgd", "steps": 40},
                   {"name": "deepfool"},
                   {"name": "carlini_wagner_l2", "binary_search_steps": 5, "steps": 100}]}
    from advlab.evaluation import config as evaluation_config

    summary = run_evaluation(evaluation_config.build(settings, {}, "demo"), args.quiet,
                             resume=False, overwrite=True)  # the demo redoes its evaluation
    assert summary is not None
    summary.update(command="demo", training=trained)
    return summary

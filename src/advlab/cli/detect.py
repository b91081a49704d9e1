"""`advlab detect`: the reactive defense. Fit a detector of adversarial inputs on a model, report
how well it separates them on held-out data, and optionally run the detect-and-retrain loop,
writing the retrained model folder with its sidecar recording the defense."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from advlab.cli.common import (
    COUNT,
    RATE,
    UsageError,
    attack_from_flag,
    check_model_fits,
    device_of,
    load_model,
    log,
    model_and_data_options,
    number,
    recorded_dataset,
    run_options,
)


def register(sub: Any) -> None:
    p = sub.add_parser("detect", help="fit a detector of adversarial inputs (and optionally "
                       "retrain on what it flags); report detection rate and false positives")
    model_and_data_options(p)
    p.add_argument("--attack", default="pgd", metavar="NAME[:KEY=VALUE,...]",
                   help="the attack the detector learns (default pgd), with its knobs")
    p.add_argument("--unseen-attack", metavar="NAME[:KEY=VALUE,...]",
                   help="a second attack, never shown to the detector, to report against")
    p.add_argument("--norm", default="linf", choices=("linf", "l2", "l1", "l0"))
    p.add_argument("--eps", type=RATE, required=True, help="the attack budget")
    p.add_argument("--features", choices=("activations", "logits"), default="logits",
                   help="what the detector reads: the logits (default; ROC-AUC 0.99 against "
                   "PGD on the digits CNN, docs/detection.md) or the penultimate layer")
    p.add_argument("--n", type=number(int, 10), default=400,
                   help="samples for each of: fitting, calibration and the held-out test")
    p.add_argument("--fpr", type=number(float, 0, 1, low_open=True, high_open=True),
                   default=0.05,
                   help="false-positive rate the threshold is calibrated to (default 0.05)")
    p.add_argument("--rounds", type=number(int, 0), default=0,
                   help="rounds of detect-and-retrain (0: only fit and measure the detector)")
    p.add_argument("--fine-tune-epochs", type=COUNT, default=2)
    p.add_argument("--keep-last", action="store_true",
                   help="keep the last round's weights (default: the round most robust on the "
                   "held-out set, which may be the original model)")
    run_options(p, out="output folder: detection.json, and model/ after retraining")
    p.set_defaults(run=detect)


def detect(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import torch

    from advlab import ThreatModel
    from advlab.defenses.detection_study import describe, detection_study
    from advlab.models import save

    if args.keep_last and args.rounds == 0:
        raise UsageError("--keep-last needs --rounds >= 1 (it chooses among retrained rounds)")
    args.device = device_of(args.device)
    attacks, infos = {}, {}
    for key, text in (("seen", args.attack), ("unseen", args.unseen_attack)):
        if text is not None:
            attacks[key], infos[key] = attack_from_flag(text, args.norm)
    config = argparse.Namespace(model=args.model, model_factory=None, device=args.device)
    model, _, recorded = load_model(config)
    dataset, _, _ = recorded_dataset(args.dataset, args.data_path, {}, recorded)
    check_model_fits(model, args.model, recorded, dataset, args.device)
    if 3 * args.n > len(dataset.y_train) or args.n > len(dataset.y_test):
        raise UsageError(f"--n {args.n} is too large: {len(dataset.y_train)} training samples "
                         f"(3 x n needed) and {len(dataset.y_test)} test samples")
    threat = ThreatModel(args.norm, args.eps, dataset.domain)
    torch.manual_seed(args.seed)  # the CLI alone seeds globally; every part also takes a seed
    log(f"fitting the detector on {args.n} inputs and their {infos['seen']['name']} versions")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        study = detection_study(model, dataset, threat, attacks, n=args.n, fpr=args.fpr,
                                features=args.features, rounds=args.rounds,
                                fine_tune_epochs=args.fine_tune_epochs, seed=args.seed,
                                keep_last=args.keep_last, progress=not args.quiet)
    lowered = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for key, m in study.metrics.items():
        log(f"{key} attack {infos[key]['name']}: ROC-AUC {m['roc_auc']:.3f}, detection rate "
            f"{m['detection_rate']:.1%}, false positives {m['false_positive_rate']:.1%} "
            f"(threshold {study.threshold:.3g} for a target FPR of {args.fpr:.0%})")
    settings = {"model": args.model, "dataset": dataset.name, "features": args.features,
                "norm": args.norm, "eps": args.eps, "n": args.n, "fpr": args.fpr,
                "rounds": args.rounds, "fine_tune_epochs": args.fine_tune_epochs,
                "keep_last": args.keep_last, "seed": args.seed}
    out = {"settings": settings, **describe(study)}
    for key, info in infos.items():
        out["detector"][key] = {"attack": info, **out["detector"][key]}
    args.out.mkdir(parents=True, exist_ok=True)
    if study.retrain is not None:
        for r in study.retrain.rounds:
            log(f"round {r.round}: flagged {r.n_flagged}/{r.n_stream} (detection rate "
                f"{r.detection_rate:.1%}, false positives {r.false_positive_rate:.1%}); "
                "robust accuracy " + ", ".join(
                    f"{k} {r.robust_accuracy_before[k]:.1%} -> {r.robust_accuracy_after[k]:.1%}"
                    for k in r.robust_accuracy_before))
        for message in lowered:
            log(f"warning: {message.removeprefix('detect_and_retrain: ')}")
        kept = study.retrain.kept_record
        which = "the original weights" if kept["round"] is None else f"round {kept['round']}"
        log(f"kept {which}" + (" (--keep-last)" if args.keep_last else
                               " (the most robust on the held-out set; --keep-last keeps the "
                               "last round)") + ": robust accuracy " + ", ".join(
            f"{k} {v:.1%}" for k, v in kept["robust_accuracy"].items()))
        recorded_sidecar = json.loads((Path(args.model) / "advlab.json").read_text())
        defense = {"defense": "detect-and-retrain", "paper": "the course's reactive defense "
                   "(detect, then retrain); detector after Metzen et al., ICLR 2017",
                   "previous": recorded_sidecar.get("defense"), "attack": infos["seen"],
                   **settings}
        save(model.cpu(), args.out / "model", architecture=recorded_sidecar["architecture"],
             arguments=recorded_sidecar["arguments"], dataset=recorded_sidecar.get("dataset"),
             class_names=recorded_sidecar.get("class_names"), defense=defense,
             metrics={"clean_accuracy_after": kept["clean_accuracy"],
                      "robust_accuracy_after": kept["robust_accuracy"],
                      "kept_round": kept["round"]},
             seed=args.seed)
        log(f"wrote the retrained model to {args.out / 'model'}")
    (args.out / "detection.json").write_text(json.dumps(out, indent=2) + "\n")
    log(f"wrote {args.out / 'detection.json'}")
    results = study.metrics
    return {"command": "detect", "out": str(args.out),
            **{f"{k}_roc_auc": round(v["roc_auc"], 6) for k, v in results.items()},
            "detection_rate": round(results["seen"]["detection_rate"], 6),
            "false_positive_rate": round(results["seen"]["false_positive_rate"], 6),
            "seed": args.seed}

"""`advlab detect`: the reactive defense. Fit a detector of adversarial inputs on a model, report
how well it separates them on held-out data, and optionally run the detect-and-retrain loop,
writing the retrained model folder with its sidecar recording the defense."""

from __future__ import annotations

import argparse
import inspect
import json
from functools import partial
from pathlib import Path
from typing import Any

from advlab.cli.common import UsageError, load_model, log, model_and_data_options, recorded_dataset


def register(sub: Any) -> None:
    p = sub.add_parser("detect", help="fit a detector of adversarial inputs (and optionally "
                       "retrain on what it flags); report detection rate and false positives")
    model_and_data_options(p)
    p.add_argument("--attack", default="pgd", metavar="NAME[:KEY=VALUE,...]",
                   help="the attack the detector learns (default pgd), with its knobs")
    p.add_argument("--unseen-attack", metavar="NAME[:KEY=VALUE,...]",
                   help="a second attack, never shown to the detector, to report against")
    p.add_argument("--norm", default="linf", choices=("linf", "l2", "l1", "l0"))
    p.add_argument("--eps", type=float, required=True, help="the attack budget")
    p.add_argument("--features", choices=("activations", "logits"), default="logits",
                   help="what the detector reads: the logits (default; ROC-AUC 0.99 against "
                   "PGD on the digits CNN, docs/detection.md) or the penultimate layer")
    p.add_argument("--n", type=int, default=400,
                   help="samples for each of: fitting, calibration and the held-out test")
    p.add_argument("--fpr", type=float, default=0.05,
                   help="false-positive rate the threshold is calibrated to (default 0.05)")
    p.add_argument("--rounds", type=int, default=0,
                   help="rounds of detect-and-retrain (0: only fit and measure the detector)")
    p.add_argument("--fine-tune-epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: detection.json, and model/ after retraining")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=detect)


def _attack(text: str, threat_norm: str) -> tuple[Any, dict[str, Any]]:
    """A configured attack function and its description, from ``NAME[:KEY=VALUE,...]``."""
    from advlab.evaluation.config import parse_attack_flag
    from advlab.evaluation.runs import make_run

    entry = parse_attack_flag(text)
    entry.setdefault("norm", threat_norm)
    run = make_run(entry)
    fn = partial(run.spec.fn, **run.params)
    if "generator" not in inspect.signature(run.spec.fn).parameters:  # deterministic attacks
        fn = partial(_without_generator, fn)
    return fn, {"name": run.name, "norm": run.norm, **run.params}


def _without_generator(fn: Any, *args: Any, generator: Any = None) -> Any:
    return fn(*args)


def detect(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab import ThreatModel
    from advlab.defenses.detection import ActivationDetector, detection_metrics
    from advlab.defenses.retraining import attack_traffic, detect_and_retrain
    from advlab.models import save

    if not 0 < args.fpr < 1:
        raise UsageError(f"--fpr must be in (0, 1), got {args.fpr}")
    if args.n < 10 or args.rounds < 0 or args.eps <= 0:
        raise UsageError("need --n >= 10, --rounds >= 0 and --eps > 0")
    config = argparse.Namespace(model=args.model, model_factory=None, device=args.device)
    model, _, recorded = load_model(config)
    dataset, _, _ = recorded_dataset(args.dataset, args.data_path, {}, recorded)
    threat = ThreatModel(args.norm, args.eps, dataset.domain)
    attack, attack_info = _attack(args.attack, args.norm)
    unseen = None if args.unseen_attack is None else _attack(args.unseen_attack, args.norm)
    torch.manual_seed(args.seed)  # the CLI alone seeds globally; every part also takes a seed
    gen = torch.Generator().manual_seed(args.seed)

    x_train, y_train = dataset.x_train, dataset.y_train
    x_test, y_test = dataset.x_test, dataset.y_test
    if 3 * args.n > len(y_train) or args.n > len(y_test):
        raise UsageError(f"--n {args.n} is too large: {len(y_train)} training samples (3 x n "
                         f"needed) and {len(y_test)} test samples")
    order = torch.randperm(len(y_train), generator=gen)
    fit_idx, cal_idx, pool_idx = order[:args.n], order[args.n:2 * args.n], order[2 * args.n:]
    test_idx = torch.randperm(len(y_test), generator=gen)[:args.n]

    def craft(fn: Any, x: Any, y: Any) -> Any:
        return fn(model, x, y, threat, generator=torch.Generator().manual_seed(args.seed))

    log(f"crafting {args.n} adversarial inputs with {attack_info['name']} to fit the detector")
    x_fit = x_train[fit_idx]
    detector = ActivationDetector(model, features=args.features, random_state=args.seed)
    detector.fit(x_fit, craft(attack, x_fit, y_train[fit_idx]))
    threshold = detector.calibrate(x_train[cal_idx], fpr=args.fpr)
    x_held, y_held = x_test[test_idx], y_test[test_idx]
    results: dict[str, Any] = {"seen": {"attack": attack_info, **detection_metrics(
        detector, x_held, craft(attack, x_held, y_held))}}
    if unseen is not None:
        results["unseen"] = {"attack": unseen[1], **detection_metrics(
            detector, x_held, craft(unseen[0], x_held, y_held))}
    for key, m in results.items():
        log(f"{key} attack {m['attack']['name']}: ROC-AUC {m['roc_auc']:.3f}, detection rate "
            f"{m['detection_rate']:.1%}, false positives {m['false_positive_rate']:.1%} "
            f"(threshold {threshold:.3g} for a target FPR of {args.fpr:.0%})")

    settings = {"model": args.model, "dataset": dataset.name, "features": args.features,
                "norm": args.norm, "eps": args.eps, "n": args.n, "fpr": args.fpr,
                "rounds": args.rounds, "fine_tune_epochs": args.fine_tune_epochs,
                "seed": args.seed}
    out: dict[str, Any] = {"settings": settings, "detector": results}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rounds:
        evals = {f"seen: {attack_info['name']}": (attack, threat)}
        if unseen is not None:
            evals[f"unseen: {unseen[1]['name']}"] = (unseen[0], threat)
        report = detect_and_retrain(
            model, detector, attack_traffic(x_train[pool_idx], y_train[pool_idx], attack,
                                            threat, n=min(args.n, len(pool_idx)),
                                            seed=args.seed),
            rounds=args.rounds, replay=(x_train[pool_idx], y_train[pool_idx]),
            test=(x_held, y_held), eval_attacks=evals, calibration=x_train[cal_idx],
            fpr=args.fpr, fine_tune_epochs=args.fine_tune_epochs, seed=args.seed,
            progress=not args.quiet)
        out["rounds"] = report.to_dicts()
        for r in report.rounds:
            log(f"round {r.round}: flagged {r.n_flagged}/{r.n_stream} (detection rate "
                f"{r.detection_rate:.1%}, false positives {r.false_positive_rate:.1%}); "
                "robust accuracy " + ", ".join(
                    f"{k} {r.robust_accuracy_before[k]:.1%} -> {r.robust_accuracy_after[k]:.1%}"
                    for k in r.robust_accuracy_before))
        sidecar = Path(args.model) / "advlab.json"
        recorded_sidecar = json.loads(sidecar.read_text())
        defense = {"defense": "detect-and-retrain", "paper": "the course's reactive defense "
                   "(detect, then retrain); detector after Metzen et al., ICLR 2017",
                   "previous": recorded_sidecar.get("defense"), "attack": attack_info,
                   **settings}
        save(model.cpu(), args.out / "model", architecture=recorded_sidecar["architecture"],
             arguments=recorded_sidecar["arguments"], dataset=recorded_sidecar.get("dataset"),
             class_names=recorded_sidecar.get("class_names"), defense=defense,
             metrics={"clean_accuracy_after": report.rounds[-1].clean_accuracy_after},
             seed=args.seed)
        log(f"wrote the retrained model to {args.out / 'model'}")
    (args.out / "detection.json").write_text(json.dumps(out, indent=2) + "\n")
    log(f"wrote {args.out / 'detection.json'}")
    return {"command": "detect", "out": str(args.out),
            **{f"{k}_roc_auc": round(v["roc_auc"], 6) for k, v in results.items()},
            "detection_rate": round(results["seen"]["detection_rate"], 6),
            "false_positive_rate": round(results["seen"]["false_positive_rate"], 6),
            "seed": args.seed}

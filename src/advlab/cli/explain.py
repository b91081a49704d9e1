"""`advlab explain` (attributions and permutation importance of a trained model) and
`advlab robust-features` (the XAI-based robust feature-selection pipeline of Al-Essa et al.,
ISMIS 2022, end to end). Each writes a JSON file, SVG figures and a self-contained report.html
(rendered from the JSON and the figures) into ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from advlab.cli.common import (
    COUNT,
    RATE,
    UsageError,
    attack_from_flag,
    check_model_fits,
    device_of,
    load_dataset,
    load_model,
    log,
    model_and_data_options,
    number,
    recorded_dataset,
    run_options,
)

# the method names, without importing torch and captum when the parser is built
METHODS = ("saliency", "abs-saliency", "input-x-gradient", "integrated-gradients", "grad-cam",
           "shap", "gradient-shap", "deeplift-shap", "permutation")


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="attributions (saliency, integrated gradients, Grad-CAM, "
                       "SHAP) or DALEX permutation importance of a trained model, with figures")
    p.add_argument("--method", required=True, choices=METHODS)
    model_and_data_options(p)
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--n", type=number(int, 2), default=200,
                   help="samples explained (default 200)")
    p.add_argument("--target", default="predicted",
                   help="class explained: 'predicted', 'label' or a class index")
    p.add_argument("--steps", type=COUNT, default=32, help="integrated gradients: steps")
    p.add_argument("--samples", type=COUNT, default=25,
                   help="shap: permutations; gradient-shap: draws per sample")
    p.add_argument("--background", type=number(int, 2), default=100,
                   help="SHAP methods: reference rows drawn from the training split")
    p.add_argument("--permutations", type=COUNT, default=10, help="permutation: B")
    p.add_argument("--loss", choices=("cross_entropy", "1-auc"), default="cross_entropy",
                   help="permutation: the loss")
    p.add_argument("--top", type=COUNT, default=20, help="features shown in the bar chart")
    p.add_argument("--threads", type=COUNT, help="torch intra-op threads (default: torch's)")
    run_options(p, quiet=False)
    p.set_defaults(run=explain)

    r = sub.add_parser("robust-features", help="XAI-based robust feature selection (Al-Essa et "
                       "al., ISMIS 2022): B, T+A and T+A+XAIFS(k), clean and robust accuracy")
    r.add_argument("--dataset", required=True, help="a tabular dataset (nsl-kdd, tuandromd, ...)")
    r.add_argument("--data-path", type=Path)
    r.add_argument("--labels", choices=("binary", "5class"), default="binary")
    r.add_argument("--upsample", action="store_true", help=argparse.SUPPRESS)
    r.add_argument("--k", type=int, nargs="+", default=[5, 10, 15, 20, 30],
                   help="the top-k grid (default 5 10 15 20 30)")
    r.add_argument("--norm", choices=("linf", "l2", "l1"), default="linf")
    r.add_argument("--eps", type=RATE, default=0.1)
    r.add_argument("--train-attack", default="fgsm", metavar="NAME[:KEY=VALUE,...]",
                   help="crafts the adversarial training set A against B (default fgsm)")
    r.add_argument("--eval-attack", nargs="+", default=["fgsm", "bim", "pgd:steps=20"],
                   metavar="NAME[:KEY=VALUE,...]", help="white-box evaluation attacks")
    r.add_argument("--hidden", type=COUNT, nargs="+", default=[128, 64])
    r.add_argument("--epochs", type=COUNT, default=10)
    r.add_argument("--lr", type=RATE, default=1e-3)
    r.add_argument("--importance-samples", type=COUNT, default=5000)
    r.add_argument("--permutations", type=COUNT, default=10)
    r.add_argument("--loss", choices=("cross_entropy", "1-auc"), default="cross_entropy")
    r.add_argument("--eval-samples", type=COUNT, default=2000)
    r.add_argument("--threads", type=COUNT, help="torch intra-op threads (default: torch's)")
    run_options(r)
    r.set_defaults(run=robust_features)


def _threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)


def _target(text: str) -> str | int:
    if text in ("predicted", "label"):
        return text
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--target must be 'predicted', 'label' or a class index, got "
                         f"{text!r}") from None


def explain(args: argparse.Namespace) -> dict[str, Any]:
    from advlab.explain.explanation import explain_samples
    from advlab.report.explanations import write_explanation

    _threads(args)
    args.device = device_of(args.device)
    config = argparse.Namespace(model=args.model, model_factory=None, device=args.device)
    model, _, recorded = load_model(config)
    dataset, _, _ = recorded_dataset(args.dataset, args.data_path, {}, recorded)
    check_model_fits(model, args.model, recorded, dataset, args.device)
    target = _target(args.target)
    if isinstance(target, int) and not 0 <= target < dataset.num_classes:
        raise UsageError(f"--target {target} is not a class index in [0, {dataset.num_classes})")
    log(f"explaining {args.n} {args.split} samples of {dataset.name} with {args.method} ...")
    result = explain_samples(model, dataset, args.method, split=args.split, n=args.n,
                             target=target, steps=args.steps,  # type: ignore[arg-type]
                             samples=args.samples, background=args.background,
                             permutations=args.permutations, loss=args.loss, seed=args.seed,
                             device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    written = write_explanation(args.out, {"model": args.model, **result}, top=args.top)
    ranking = result.get("importance", {}).get("ranking") or result.get("ranking") or []
    log(f"wrote {args.out / 'explain.json'}, report.html and {len(written)} figure(s)")
    return {"command": "explain", "method": args.method, "out": str(args.out),
            "top_features": [r["name"] for r in ranking[:5]], "seed": args.seed}


def robust_features(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab import ThreatModel
    from advlab.explain import TrainSettings, robust_feature_selection
    from advlab.report.explanations import write_robust_features

    if min(args.k) < 1:
        raise UsageError(f"need every --k >= 1, got {min(args.k)}")
    device_of(args.device, cpu_only="robust-features")
    _threads(args)
    train_attack, train_info = attack_from_flag(args.train_attack, args.norm)
    evals = {}
    for text in args.eval_attack:
        fn, info = attack_from_flag(text, args.norm)
        evals[info["name"]] = fn
    dataset = load_dataset(args)
    if dataset.x_train.dim() != 2:
        raise UsageError(f"robust-features is for tabular data; {dataset.name} has inputs of "
                         f"shape {tuple(dataset.x_train.shape[1:])}")
    torch.manual_seed(args.seed)  # the CLI alone seeds globally; the library takes seeds
    threat = ThreatModel(args.norm, args.eps, dataset.domain)
    log(f"robust feature selection on {dataset.name}: k in {args.k}, {args.norm} eps "
        f"{args.eps}, A crafted with {train_info['name']}")
    result = robust_feature_selection(
        dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, threat, ks=args.k,
        train_attack=train_attack, eval_attacks=evals, feature_names=dataset.feature_names,
        one_hot_groups=dataset.domain.one_hot_groups, classes=dataset.num_classes,
        training=TrainSettings(hidden=tuple(args.hidden), epochs=args.epochs, lr=args.lr,
                               seed=args.seed),
        importance_samples=args.importance_samples, permutations=args.permutations,
        loss=args.loss, eval_samples=args.eval_samples, seed=args.seed,
        progress=not args.quiet)
    data = result.as_dict()
    data["settings"].update(dataset=dataset.name, train_attack=train_info,
                            eval_attacks=list(evals))
    for row in result.rows:
        robust = row["robust_accuracy"] or {}
        log(f"{row['model']:<16} columns {row['n_columns']:>3}  clean "
            + ("–" if row["clean_accuracy"] is None else f"{row['clean_accuracy']:.3f}")
            + "".join(f"  {k} {v:.3f}" for k, v in robust.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    write_robust_features(args.out, data, ks=args.k, attacks=list(evals))
    log(f"wrote {args.out / 'robust_features.json'} and report.html")
    return {"command": "robust-features", "out": str(args.out), "seed": args.seed,
            "rows": [{"model": r["model"], "clean_accuracy": r["clean_accuracy"],
                      "robust_accuracy": r["robust_accuracy"]} for r in result.rows]}

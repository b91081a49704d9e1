"""`advlab explain` (attributions and permutation importance of a trained model) and
`advlab robust-features` (the XAI-based robust feature-selection pipeline of Al-Essa et al.,
ISMIS 2022, end to end). Each writes a JSON file, SVG figures and a self-contained report.html
(rendered from the JSON and the figures) into ``--out``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from advlab.cli.common import (
    UsageError,
    load_dataset,
    load_model,
    log,
    model_and_data_options,
    recorded_dataset,
)

METHODS = ("saliency", "abs-saliency", "input-x-gradient", "integrated-gradients", "grad-cam",
           "shap", "gradient-shap", "deeplift-shap", "permutation")


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="attributions (saliency, integrated gradients, Grad-CAM, "
                       "SHAP) or DALEX permutation importance of a trained model, with figures")
    p.add_argument("--method", required=True, choices=METHODS)
    model_and_data_options(p)
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--n", type=int, default=200, help="samples explained (default 200)")
    p.add_argument("--target", default="predicted",
                   help="class explained: 'predicted', 'label' or a class index")
    p.add_argument("--steps", type=int, default=32, help="integrated gradients: steps")
    p.add_argument("--samples", type=int, default=25,
                   help="shap: permutations; gradient-shap: draws per sample")
    p.add_argument("--background", type=int, default=100,
                   help="SHAP methods: reference rows drawn from the training split")
    p.add_argument("--permutations", type=int, default=10, help="permutation: B")
    p.add_argument("--loss", choices=("cross_entropy", "1-auc"), default="cross_entropy",
                   help="permutation: the loss")
    p.add_argument("--top", type=int, default=20, help="features shown in the bar chart")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
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
    r.add_argument("--eps", type=float, default=0.1)
    r.add_argument("--train-attack", default="fgsm", metavar="NAME[:KEY=VALUE,...]",
                   help="crafts the adversarial training set A against B (default fgsm)")
    r.add_argument("--eval-attack", nargs="+", default=["fgsm", "bim", "pgd:steps=20"],
                   metavar="NAME[:KEY=VALUE,...]", help="white-box evaluation attacks")
    r.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    r.add_argument("--epochs", type=int, default=10)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--importance-samples", type=int, default=5000)
    r.add_argument("--permutations", type=int, default=10)
    r.add_argument("--loss", choices=("cross_entropy", "1-auc"), default="cross_entropy")
    r.add_argument("--eval-samples", type=int, default=2000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    r.add_argument("--out", type=Path, required=True, help="output folder")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(run=robust_features)


def _threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)


def _target(text: str, y: Any, classes: int) -> Any:
    if text == "predicted":
        return None
    if text == "label":
        return y
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--target must be 'predicted', 'label' or a class index, got "
                         f"{text!r}") from None
    if not 0 <= value < classes:
        raise UsageError(f"--target {value} is not a class index in [0, {classes})")
    return value


def explain(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab import explain as xai
    from advlab.report import explain_html as html
    from advlab.report import explain_plots as plots

    if args.n < 2 or args.steps < 1 or args.samples < 1 or args.background < 2 or \
            args.permutations < 1:
        raise UsageError("need --n >= 2, --steps >= 1, --samples >= 1, --background >= 2 and "
                         "--permutations >= 1")
    _threads(args)
    config = argparse.Namespace(model=args.model, model_factory=None, device=args.device)
    model, _, recorded = load_model(config)
    dataset, _, _ = recorded_dataset(args.dataset, args.data_path, {}, recorded)
    gen = torch.Generator().manual_seed(args.seed)
    x_all, y_all = (dataset.x_test, dataset.y_test) if args.split == "test" else \
        (dataset.x_train, dataset.y_train)
    idx = torch.randperm(len(y_all), generator=gen)[:args.n]
    x, y = x_all[idx].to(args.device), y_all[idx].to(args.device)
    background = dataset.x_train[torch.randperm(len(dataset.x_train), generator=gen)
                                 [:args.background]].to(args.device)
    target = _target(args.target, y, dataset.num_classes)
    image = x.dim() == 4
    groups, names = xai.feature_groups(dataset.feature_names, dataset.domain.one_hot_groups) \
        if not image else (None, None)
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str | None] = {}
    out: dict[str, Any] = {"method": args.method, "model": args.model,
                           "dataset": dataset.name, "split": args.split, "n": len(y),
                           "target": args.target, "seed": args.seed}
    log(f"explaining {len(y)} {args.split} samples of {dataset.name} with {args.method} ...")
    if args.method == "permutation":
        imp = xai.model_parts(model, x, y, loss=args.loss, groups=groups, names=names,
                              permutations=args.permutations, generator=gen)
        out["importance"] = imp.as_dict()
        figures["importance"] = plots.importance_figure(
            out["importance"]["ranking"], top=args.top,
            title=f"{dataset.name}: permutation importance ({args.loss}, "
                  f"B = {args.permutations})", xlabel=f"{args.loss} increase after permutation")
    else:
        attributions = _attribute(args, xai, model, x, target, background, groups, gen)
        out["shape"] = list(attributions.shape)
        if image:
            shown = min(6, len(y))
            out["maps"] = attributions[:shown].detach().cpu().tolist()
            figures["overlays"] = plots.overlay_figure(
                [x[i].cpu().numpy() for i in range(shown)],
                [attributions[i].cpu().numpy().reshape(x.shape[2:]) if attributions.dim() == 3
                 else attributions[i].cpu().numpy().mean(0) for i in range(shown)],
                titles=[f"label {int(y[i])}" for i in range(shown)],
                signed=args.method in ("saliency", "input-x-gradient", "integrated-gradients",
                                       "shap", "gradient-shap", "deeplift-shap"))
        else:
            flat = attributions.flatten(1).abs()
            per_group = [flat[:, g].sum(1) / (len(g) if args.method == "shap" else 1)
                         for g in (groups or [[c] for c in range(flat.shape[1])])]
            stacked = torch.stack(per_group, 1)
            mean, std = stacked.mean(0), stacked.std(0)
            order = torch.sort(-mean, stable=True).indices.tolist()
            labels = names or [str(c) for c in range(flat.shape[1])]
            out["ranking"] = [{"name": labels[i], "importance": float(mean[i]),
                               "std": float(std[i])} for i in order]
            figures["importance"] = plots.importance_figure(
                out["ranking"], top=args.top, title=f"{dataset.name}: mean |{args.method}|",
                xlabel="mean |attribution| (± std over samples)")
    written = []
    (args.out / "figures").mkdir(exist_ok=True)
    for name, svg in figures.items():
        if svg is not None:
            path = args.out / "figures" / f"{name}.svg"
            path.write_text(svg, encoding="utf-8", newline="\n")
            written.append(str(path))
    out["figures"] = written
    (args.out / "explain.json").write_text(json.dumps(out, indent=1) + "\n")
    top = out.get("importance", {}).get("ranking") or out.get("ranking") or []
    settings = {k: v for k, v in out.items() if k not in ("importance", "ranking", "maps",
                                                           "figures")}
    tables = [("Ranking (top 30)", html.table(
        ["feature", "importance", "± std"],
        [[r["name"], r["importance"], r["std"]] for r in top[:30]]))] if top else []
    (args.out / "report.html").write_text(html.render_page(
        f"advlab explain: {args.method}", settings, figures, tables), encoding="utf-8")
    log(f"wrote {args.out / 'explain.json'}, report.html and {len(written)} figure(s)")
    return {"command": "explain", "method": args.method, "out": str(args.out),
            "top_features": [r["name"] for r in top[:5]], "seed": args.seed}


def _attribute(args: argparse.Namespace, xai: Any, model: Any, x: Any, target: Any,
               background: Any, groups: Any, gen: Any) -> Any:
    m = args.method
    if m in ("saliency", "abs-saliency", "input-x-gradient"):
        mode = {"saliency": "gradient", "abs-saliency": "abs"}.get(m, "input_x_gradient")
        return xai.saliency(model, x, target, mode=mode)
    if m == "integrated-gradients":
        return xai.integrated_gradients(model, x, target, steps=args.steps)
    if m == "grad-cam":
        if x.dim() != 4:
            raise UsageError("grad-cam needs an image model (small_cnn); use saliency or shap "
                             "for tabular data")
        return xai.grad_cam(model, x, target)
    if m == "shap":
        return xai.shapley_sampling(model, x, target, background=background,
                                    n_samples=args.samples, groups=groups, generator=gen)
    if m == "gradient-shap":
        return xai.gradient_shap(model, x, target, background=background,
                                 n_samples=args.samples, generator=gen)
    return xai.deeplift_shap(model, x, target, background=background[:32])


def robust_features(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab import ThreatModel
    from advlab.cli.detect import _attack
    from advlab.explain import TrainSettings, robust_feature_selection
    from advlab.report import explain_html as html
    from advlab.report import explain_plots as plots

    if min(args.k) < 1 or args.eps <= 0 or args.epochs < 1:
        raise UsageError("need every --k >= 1, --eps > 0 and --epochs >= 1")
    _threads(args)
    dataset = load_dataset(args)
    if dataset.x_train.dim() != 2:
        raise UsageError(f"robust-features is for tabular data; {dataset.name} has inputs of "
                         f"shape {tuple(dataset.x_train.shape[1:])}")
    torch.manual_seed(args.seed)  # the CLI alone seeds globally; the library takes seeds
    threat = ThreatModel(args.norm, args.eps, dataset.domain)
    train_attack, train_info = _attack(args.train_attack, args.norm)
    evals = {}
    for text in args.eval_attack:
        fn, info = _attack(text, args.norm)
        evals[info["name"]] = fn
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
    (args.out / "figures").mkdir(exist_ok=True)
    k_mid = sorted(args.k)[len(args.k) // 2]
    figures = {
        "rankings": plots.ranking_comparison_figure(
            data["clean_importance"]["ranking"], data["adversarial_importance"]["ranking"],
            titles=("B on clean training data", "T+A on adversarial data A"), k=k_mid),
        "robust-features": plots.robust_features_figure(data["rows"]),
    }
    for name, svg in figures.items():
        if svg is not None:
            (args.out / "figures" / f"{name}.svg").write_text(svg, encoding="utf-8",
                                                             newline="\n")
    (args.out / "robust_features.json").write_text(json.dumps(data, indent=1) + "\n")
    header = ["model", "columns", "clean accuracy", *[f"{a} (white box)" for a in evals],
              *[f"{a} from B" for a in evals]]
    rows = [[r["model"], r["n_columns"], r["clean_accuracy"],
             *[(r["robust_accuracy"] or {}).get(a) for a in evals],
             *[(r["transfer_accuracy"] or {}).get(a) for a in evals]] for r in data["rows"]]
    kept = [[r["model"], r["features"]] for r in data["rows"] if r["k"] is not None]
    (args.out / "report.html").write_text(html.render_page(
        f"advlab robust-features: {dataset.name}", data["settings"], figures,
        [("Accuracy", html.table(header, rows)),
         ("Selected features", html.table(["model", "features"], kept))]), encoding="utf-8")
    log(f"wrote {args.out / 'robust_features.json'} and report.html")
    return {"command": "robust-features", "out": str(args.out), "seed": args.seed,
            "rows": [{"model": r["model"], "clean_accuracy": r["clean_accuracy"],
                      "robust_accuracy": r["robust_accuracy"]} for r in result.rows]}

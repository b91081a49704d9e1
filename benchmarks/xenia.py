"""XAI-based adversarial training (Al-Essa et al. 2022, XENIA) with the authors' protocol.

Usage:
    .venv/bin/python benchmarks/xenia.py [--dataset nsl-kdd|kddcup99|tuandromd]
        [--data-path PATH] [--labels binary|5class] [--quick] [--seed 0] [--seeds 3]
        [--json PATH]

The protocol of the authors' code (github.com/malikalessa/XENIA; details in
``advlab.explain.finetune``), per seed, on an MLP 128-64 (Adam; every training holds out a
stratified 20 % and stops after ``patience`` epochs without a better validation loss, keeping
the best epoch; at most ``epochs``):

1. **B**, trained on the training set T.
2. **A**: FGSM of every training row against B, L∞ eps 0.01 (their CICIDS17 setting, min-max
   scaled like ours) under the data set's Domain; **T+A**: a fresh network trained on T ∪ A.
3. SHAP values of T+A on every row of T ∪ A at its true label, against 100 stratified
   background rows of T ∪ A (theirs: KernelSHAP; here GradientSHAP, 32 draws per row: the
   DeepLIFT-SHAP alternative costs 7 CPU-s per 1,000 rows with 100 references); min-max
   scaled (training statistics).
4. **T+A+XAI**: T+A fine-tuned on those SHAP features (lr 5e-4, the middle of their range);
   a test row is classified from its SHAP values at T+A's predicted class.
5. **XENIA**: T+A+XAI fine-tuned again on the raw rows of T ∪ A (their "double fine-tuning").

Control: **T+A+T+A**, T+A fine-tuned on T ∪ A with the same schedule but no SHAP stage (is a
gain due to the explanations, or to more epochs?). The paper reports clean test accuracy;
robust accuracy is added: white-box FGSM and PGD-20 against every raw-input model (L∞ eps 0.01
and 0.1), and for T+A+XAI the same adversarial rows crafted against T+A (gray box).
"""

from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import log, main_run, parser, pm, seed_list  # noqa: E402

from advlab import Domain, ThreatModel  # noqa: E402
from advlab.attacks import fgsm, pgd  # noqa: E402
from advlab.data import Dataset, load  # noqa: E402
from advlab.explain import xai_fine_tune, xenia_refine  # noqa: E402
from advlab.explain.finetune import fine_tune  # noqa: E402
from advlab.explain.robust_features import adversarial_set, robust_accuracy  # noqa: E402
from advlab.models import accuracy, new_model  # noqa: E402

DATASETS = ("nsl-kdd", "kddcup99", "tuandromd")
MODELS = ("B", "T+A", "T+A+T+A", "T+A+XAI", "XENIA")
ATTACKS = {"fgsm": fgsm, "pgd": functools.partial(pgd, steps=20)}
FULL = {"train_rows": None, "epochs": 150, "patience": 10, "background": 100, "shap_draws": 32,
        "eval_rows": 2000}
QUICK = {"train_rows": 4000, "epochs": 30, "patience": 5, "background": 20, "shap_draws": 8,
         "eval_rows": 500}


def attack_domain(data: Dataset) -> Domain:
    """The Domain attacks respect. TUANDROMD's add-only binary features cannot move by 0.01,
    so there (as in the authors' unclipped FGSM on min-max data) the box [0, 1] is used."""
    return Domain(0.0, 1.0) if data.name == "tuandromd" else data.domain


def train_net(x: torch.Tensor, y: torch.Tensor, classes: int, seed: int,
              sizes: dict[str, Any], net: torch.nn.Module | None = None,
              lr: float = 1e-3) -> torch.nn.Module:
    """A fresh MLP 128-64 (or ``net``, fine-tuned) trained with early stopping on 20 %."""
    if net is None:
        net = new_model("mlp", {"in_features": x.shape[1], "classes": classes,
                                "hidden": [128, 64]}, seed=seed)
    fine_tune(net, x, y, epochs=sizes["epochs"], lr=lr, batch_size=256, val_fraction=0.2,
              patience=sizes["patience"], seed=seed, progress=False)
    return net.eval()


def stratified(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(torch.arange(len(y)).numpy(), train_size=n, random_state=seed,
                              stratify=y.numpy())
    return torch.from_numpy(idx)


def one_seed(data: Dataset, seed: int, sizes: dict[str, Any]) -> dict[str, Any]:
    classes = data.num_classes
    x, y = data.x_train, data.y_train
    if sizes["train_rows"] is not None and sizes["train_rows"] < len(y):
        keep = stratified(y, sizes["train_rows"], seed)
        x, y = x[keep], y[keep]
    domain = attack_domain(data)
    baseline = train_net(x, y, classes, seed, sizes)
    adv = adversarial_set(baseline, x, y, ThreatModel("linf", 0.01, domain), fgsm, seed=seed)
    x_aug, y_aug = torch.cat([x, adv]), torch.cat([y, y])
    at = train_net(x_aug, y_aug, classes, seed, sizes)
    bg = x_aug[stratified(y_aug, sizes["background"], seed)]
    tune = {"epochs": sizes["epochs"], "lr": 5e-4, "batch_size": 256, "val_fraction": 0.2,
            "patience": sizes["patience"], "seed": seed}
    xai = xai_fine_tune(at, x_aug, y_aug, background=bg, shap="gradient",
                        n_samples=sizes["shap_draws"], explain_train="label", scale="minmax",
                        **tune)
    models = {"B": baseline, "T+A": at,
              "T+A+T+A": train_net(x_aug, y_aug, classes, seed, sizes,
                                   net=copy.deepcopy(at), lr=5e-4),
              "T+A+XAI": xai, "XENIA": xenia_refine(xai, x_aug, y_aug, **tune)}
    out: dict[str, Any] = {"seed": seed, "train_rows": len(y),
                           "adversarial_changed": float((adv != x).any(1).float().mean())}
    for name, model in models.items():
        out[f"clean:{name}"] = accuracy(model, data.x_test, data.y_test, batch_size=4096)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.y_test), generator=gen)[:sizes["eval_rows"]]
    xe, ye = data.x_test[idx], data.y_test[idx]
    for name, model in models.items():
        out[f"clean_eval:{name}"] = accuracy(model, xe, ye, batch_size=4096)
    for eps in (0.01, 0.1):
        threat = ThreatModel("linf", eps, domain)
        for attack, fn in ATTACKS.items():
            key = f"{attack}@{eps:g}"
            for name in ("B", "T+A", "T+A+T+A", "XENIA"):
                out[f"{key}:{name}"] = robust_accuracy(models[name], xe, ye, threat, fn,
                                                       seed=seed)
            gray = adversarial_set(at, xe, ye, threat, fn, seed=seed)
            out[f"{key}:T+A+XAI"] = accuracy(xai, gray, ye, batch_size=4096)
    log(f"xenia {data.name} seed {seed}: " + ", ".join(
        f"{k} {v:.3f}" for k, v in out.items() if k.startswith("clean")))
    return out


def run(*, dataset: str = "nsl-kdd", data_path: Path, quick: bool = False, seed: int = 0,
        seeds: int = 3, labels: str = "binary") -> dict[str, Any]:
    """The figures of the module docstring: per seed, and mean ± std over ``seeds`` seeds."""
    if dataset not in DATASETS:
        raise ValueError(f"xenia: dataset must be one of {DATASETS}, got {dataset!r}")
    options = {"labels": labels} if dataset in ("nsl-kdd", "kddcup99") else {}
    data = load(dataset, data_path, **options)
    sizes = dict(QUICK if quick else FULL)
    if dataset == "kddcup99" and sizes["train_rows"] is None:
        sizes["train_rows"] = 25192  # the size of NSL-KDD's training file (of 370,515)
    per_seed = [one_seed(data, s, sizes) for s in seed_list(seed, seeds)]
    keys = ["clean", "clean_eval"] + [f"{a}@{e:g}" for e in (0.01, 0.1) for a in ATTACKS]
    gains = {k: [r[f"{k}:XENIA"] - r[f"{k}:T+A"] for r in per_seed] for k in keys}
    return {"dataset": dataset, "labels": labels if options else "binary", "quick": quick,
            "sizes": sizes, "per_seed": per_seed, "columns": keys,
            "xenia_minus_ta": gains}


def report(result: dict[str, Any]) -> str:
    rows, keys = result["per_seed"], result["columns"]
    head = ["model", "clean (test)", "clean (attacked rows)"] + [
        k.replace("@", " eps ") for k in keys[2:]]
    lines = [f"### XENIA on {result['dataset']} ({result['labels']}; {len(rows)} seeds; "
             "accuracy %, mean ± std)", "", "| " + " | ".join(head) + " |",
             "|---|" + "---:|" * (len(head) - 1)]
    for name in MODELS:
        lines.append(f"| {name} | " + " | ".join(pm([r[f"{k}:{name}"] for r in rows])
                                                 for k in keys) + " |")
    lines.append("| XENIA − T+A (points) | " + " | ".join(pm(result["xenia_minus_ta"][k])
                                                          for k in keys) + " |")
    lines += ["", "T+A+XAI under attack: rows crafted against T+A (gray box)."]
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__.splitlines()[0], DATASETS, "nsl-kdd")
    p.add_argument("--labels", choices=["binary", "5class"], default="binary")
    args = p.parse_args()
    main_run(args, run, report, labels=args.labels)


if __name__ == "__main__":
    main()

"""The tree-ensemble case study of docs/trees.md: clean accuracies beside the MLP, exact and fast
evasions of an NSL-KDD XGBoost model under the real Domain, certified against empirical robust
accuracy, the features the evasions change, adversarial boosting, and poisoning on TUANDROMD.

Usage: .venv/bin/python benchmarks/trees_case_study.py [--data DIR] [--n 20]
           [--per-round 500] [--parts accuracies,evasions,poisoning,boosting]
(prints markdown; timings are ratios within this run).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from common import log, table

from advlab import ThreatModel
from advlab.attacks import Oracle, hopskipjump
from advlab.data import load
from advlab.evaluation import backdoor_success
from advlab.evaluation.score import score
from advlab.models import train_classifier
from advlab.poisoning import FeatureTrigger, backdoor, random_label_flip
from advlab.report.trees import card_rows, feature_rows, markdown, robust_accuracy_rows
from advlab.trees import TREE_KINDS, train_trees
from advlab.trees.defense import augmented_training, train_on_poisoned
from advlab.trees.greedy import greedy_evasion
from advlab.trees.milp import solve
from advlab.trees.verify import certified_radius

EPS = (0.01, 0.02, 0.05, 0.1)


def accuracies(root: Path) -> None:
    rows = []
    for name, path in (("nsl-kdd", root / "nsl-kdd"), ("tuandromd", root / "tuandromd")):
        data = load(name, path)
        mlp = train_classifier(data, "mlp", epochs=10, progress=False, seed=0)
        row = [name, f"{mlp.metrics['test_accuracy']:.2%}"]
        for kind in TREE_KINDS:
            _, record = train_trees(data, kind)
            row.append(f"{record['test_accuracy']:.2%} ({record['seconds']:.1f} s)")
        rows.append(row)
    print("## Clean test accuracy (default settings: 100 trees; MLP 10 epochs)\n")
    print(table(["data set", "MLP", *TREE_KINDS], rows) + "\n")


def evasions(root: Path, n: int) -> None:
    data = load("nsl-kdd", root / "nsl-kdd")
    model, record = train_trees(data, "xgboost", n_estimators=20, max_depth=4)
    with torch.no_grad():
        right = (model(data.x_test).argmax(1) == data.y_test).nonzero()[:, 0][:n]
    x, y = data.x_test[right], data.y_test[right]
    threat = ThreatModel("linf", math.inf, data.domain)
    print(f"## NSL-KDD XGBoost (20 trees, depth 4; test accuracy {record['test_accuracy']:.2%}),"
          f" {len(x)} clean-correct test records, L∞ under the real Domain\n")
    print(markdown(card_rows(model.ensemble.card(data.feature_names))) + "\n")
    t = time.perf_counter()
    exact = solve(model, x, y, threat)
    t_milp = time.perf_counter() - t
    t = time.perf_counter()
    x_gr = greedy_evasion(model, x, y, threat)
    t_gr = time.perf_counter() - t
    oracle = Oracle(model, output="labels", num_samples=len(x))
    t = time.perf_counter()
    x_hsj = hopskipjump(oracle, x, y, threat, max_queries=1000,
                        generator=torch.Generator().manual_seed(0))
    t_hsj = time.perf_counter() - t
    rows = []
    milp_norm = exact.norm.float()
    for name, x_adv, sec in (("Kantchelian MILP", exact.x_adv, t_milp),
                             ("greedy", x_gr, t_gr), ("HopSkipJump (1000 queries)", x_hsj, t_hsj)):
        s = score(model, x, y, x_adv, threat)
        ratio = s.linf[s.success] / milp_norm[s.success].clamp_min(1e-12)
        rows.append([name, f"{float(s.success.float().mean()):.1%}",
                     f"{float(s.linf[s.success].median()):.4f}",
                     f"{float(ratio.median()):.3f} / {float(ratio.min()):.3f} / "
                     f"{float(ratio.max()):.3f}", f"{bool(s.in_domain.all())}",
                     f"{t_milp / sec:.1f}x"])
    print(f"MILP proved optimal on {int(exact.optimal.sum())}/{len(x)} records.\n")
    print(table(["attack", "success", "median L∞", "norm / MILP (median / min / max)",
                 "all valid", "speed vs MILP"], rows) + "\n")
    radius = certified_radius(model, x, y, data.domain, group=2, steps=12, high=0.5)
    greedy_norm = torch.where(score(model, x, y, x_gr, threat).success,
                              (x_gr - x).abs().amax(1), torch.full((len(x),), math.inf))
    ok = torch.ones(len(x), dtype=torch.bool)
    print("Robust accuracy on these records: certified (Chen et al. 2019, groups of 2 trees), "
          "exact (MILP), empirical (greedy)\n")
    print(markdown(robust_accuracy_rows(milp_norm, greedy_norm, radius.float(), ok, EPS)) + "\n")
    print("Features the MILP evasions change (L∞, under the Domain)\n")
    print(markdown(feature_rows(x, exact.x_adv, torch.isfinite(exact.norm),
                                data.feature_names)) + "\n")


def hardened(root: Path, n: int, per_round: int) -> None:
    data = load("nsl-kdd", root / "nsl-kdd")
    plain, _ = train_trees(data, "xgboost", n_estimators=20, max_depth=4)
    with torch.no_grad():
        right = (plain(data.x_test).argmax(1) == data.y_test).nonzero()[:, 0][:n]
    x, y = data.x_test[right], data.y_test[right]
    before = solve(plain, x, y, ThreatModel("linf", math.inf, data.domain)).norm.float()
    threat = ThreatModel("linf", 0.05, data.domain)
    model, record = augmented_training(data, "xgboost", threat, rounds=2, per_round=per_round,
                                       n_estimators=20, max_depth=4)
    after = solve(model, x, y, ThreatModel("linf", math.inf, data.domain)).norm.float()
    rows = [["XGBoost", f"{float((before > 0.05).float().mean()):.1%}",
             f"{float(before.median()):.4f}"],
            [f"adversarial boosting (eps 0.05, 2 rounds of {per_round})",
             f"{float((after > 0.05).float().mean()):.1%}", f"{float(after.median()):.4f}"]]
    added = [h["added"] for h in record["defense"]["history"]]
    print(f"Adversarial boosting (added {added} evasions; test accuracy "
          f"{record['test_accuracy']:.2%}); exact robust accuracy at L∞ 0.05 on the first {n} "
          "clean-correct records of the undefended model\n")
    print(table(["model", "robust accuracy at 0.05 (exact)", "median minimal L∞"], rows) + "\n")


def poisoning(root: Path) -> None:
    data = load("tuandromd", root / "tuandromd")
    gen = torch.Generator().manual_seed(0)
    rows = []
    _, clean = train_trees(data, "xgboost")
    rows.append(["none", f"{clean['test_accuracy']:.2%}", "–"])
    for rate in (0.1, 0.3):
        flipped = random_label_flip(data.x_train, data.y_train, rate, generator=gen)
        _, rec = train_on_poisoned(data, "xgboost", flipped)
        rows.append([f"random label flips {rate:.0%}", f"{rec['test_accuracy']:.2%}", "–"])
    rare = data.x_train.mean(0).argsort()[:3].tolist()  # three permissions almost never set
    trigger = FeatureTrigger({j: 1.0 for j in rare}, data.domain)
    for rate in (0.01, 0.05):
        poisoned = backdoor(data.x_train, data.y_train, trigger, 0, rate, domain=data.domain,
                            generator=gen)
        model, rec = train_on_poisoned(data, "xgboost", poisoned)
        success = backdoor_success(model, data.x_test, data.y_test, trigger, 0)
        rows.append([f"backdoor {rate:.0%} (3 rare permissions -> goodware)",
                     f"{rec['test_accuracy']:.2%}", f"{success:.1%}"])
    print("## Poisoning the TUANDROMD XGBoost trainer (100 trees, depth 6)\n")
    print(table(["poisoning", "clean test accuracy", "backdoor success"], rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=500,
                        help="training points attacked per adversarial-boosting round")
    parser.add_argument("--parts", default="accuracies,evasions,poisoning,boosting")
    args = parser.parse_args()
    torch.manual_seed(0)
    parts = args.parts.split(",")
    for name, run in (("accuracies", lambda: accuracies(args.data)),
                      ("evasions", lambda: evasions(args.data, args.n)),
                      ("poisoning", lambda: poisoning(args.data)),
                      ("boosting", lambda: hardened(args.data, args.n, args.per_round))):
        if name in parts:
            log(f"{name} ...")
            run()


if __name__ == "__main__":
    main()

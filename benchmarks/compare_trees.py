"""advlab's tree attacks against ART's on the same NSL-KDD tree models (the box [0, 1]).

Usage: .venv/bin/python benchmarks/compare_trees.py [--nsl-kdd DIR] [--n 50] [--quick]
(also run by ``benchmarks/compare.py --only trees``; ART comes from ``make compare-setup``).

* An XGBoost model (20 trees of depth 4) on NSL-KDD. advlab: the Kantchelian MILP (white box,
  exact) and the greedy heuristic; HopSkipJump L∞ through the Oracle with a budget of ART's
  own queries per sample. ART: HopSkipJump (norm ∞) and ZOO (L2) on the same model's
  probabilities through ``BlackBoxClassifier`` (ART 1.20.1's ``XGBoostClassifier`` reads a
  binary Booster's probabilities as labels and predicts class 0 for every input), their
  queries counted row by row.
* A scikit-learn decision tree (depth 8): ART's ``DecisionTreeAttack`` (Papernot et al. 2016)
  against advlab's MILP on the same tree.

Every output is scored by :func:`advlab.evaluation.score` in the box: medians of the norms of
the successful perturbations of clean-correct samples. The box is every library's domain here,
since ART knows no one-hot, integer or immutable features. Times are ratios within one run.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from common import DEFAULT_NSL_KDD, fmt, log, table

from advlab import Domain, ThreatModel
from advlab.attacks import Oracle, hopskipjump
from advlab.data import load
from advlab.evaluation.score import score
from advlab.trees import TreeModel, train_trees
from advlab.trees.greedy import greedy_evasion
from advlab.trees.milp import kantchelian_milp
from advlab.trees.model import parse


def counting(estimator: object) -> object:
    """Count the rows an ART estimator predicts (every query an ART attack makes)."""
    estimator.queries = 0  # type: ignore[attr-defined]
    original = estimator.predict  # type: ignore[attr-defined]

    def predict(x: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        estimator.queries += len(x)  # type: ignore[attr-defined]
        return original(x, *args, **kwargs)

    estimator.predict = predict  # type: ignore[attr-defined]
    return estimator


def _probabilities(model: TreeModel, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x, dtype=np.float32))).softmax(1).numpy()


def row(name: str, model: TreeModel, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
        threat: ThreatModel, queries: float | None, seconds: float) -> list[str]:
    s = score(model, x, y, x_adv, threat)
    ok = s.success & s.clean_correct
    med = [float(getattr(s, p)[ok].median()) if ok.any() else math.nan for p in
           ("linf", "l2", "l1")]
    return [name, f"{float(ok.float().mean()):.1%}", fmt(med[0], 4), fmt(med[1], 4),
            fmt(med[2], 4), "white box" if queries is None else f"{queries:.0f}",
            f"{seconds:.2f}"]


def run(nsl_kdd: Path, n: int = 50, quick: bool = False) -> None:
    from art.attacks.evasion import DecisionTreeAttack, HopSkipJump, ZooAttack
    from art.estimators.classification import BlackBoxClassifier, SklearnClassifier

    warnings.filterwarnings("ignore")
    if not nsl_kdd.is_dir():
        print(f"tree comparison skipped: no NSL-KDD folder at {nsl_kdd}\n")
        return
    n = 12 if quick else n
    data = load("nsl-kdd", nsl_kdd)
    box = Domain(0.0, 1.0, n_features=data.domain.n_features)
    threat = ThreatModel("linf", math.inf, box)
    log("training XGBoost (20 trees, depth 4) ...")
    model, record = train_trees(data, "xgboost", n_estimators=20, max_depth=4)
    with torch.no_grad():
        right = (model(data.x_test).argmax(1) == data.y_test).nonzero()[:, 0][:n]
    x, y = data.x_test[right], data.y_test[right]
    xn = x.numpy()
    rows = []

    def timed(fn):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    x_milp, t_milp = timed(lambda: kantchelian_milp(model, x, y, threat))
    rows.append(row("advlab Kantchelian MILP (exact)", model, x, y, x_milp, threat, None, t_milp))
    x_gr, t_gr = timed(lambda: greedy_evasion(model, x, y, threat))
    rows.append(row("advlab greedy", model, x, y, x_gr, threat, None, t_gr))
    art_xgb = counting(BlackBoxClassifier(lambda a: _probabilities(model, a), (x.shape[1],), 2,
                                          clip_values=(0.0, 1.0)))
    hsj = HopSkipJump(art_xgb, norm=np.inf, max_iter=10 if quick else 40, max_eval=1000,
                      init_eval=100, verbose=False)
    x_art, t_art = timed(lambda: hsj.generate(xn))
    per = art_xgb.queries / len(x)
    rows.append(row("ART HopSkipJump L∞", model, x, y, torch.from_numpy(x_art).float(), threat,
                    per, t_art))
    oracle = Oracle(model, output="labels", num_samples=len(x))
    x_hsj, t_hsj = timed(lambda: hopskipjump(oracle, x, y, threat, max_queries=int(per),
                                             generator=torch.Generator().manual_seed(0)))
    rows.append(row("advlab HopSkipJump L∞ (ART's budget)", model, x, y, x_hsj, threat,
                    float(oracle.per_sample.float().mean()), t_hsj))
    art_xgb.queries = 0
    zoo = ZooAttack(art_xgb, max_iter=10 if quick else 40, binary_search_steps=5,
                    nb_parallel=16, use_resize=False, use_importance=False, batch_size=1,
                    learning_rate=0.05, verbose=False)
    x_zoo, t_zoo = timed(lambda: zoo.generate(xn))
    rows.append(row("ART ZOO (L2)", model, x, y, torch.from_numpy(x_zoo).float(), threat,
                    art_xgb.queries / len(x), t_zoo))
    l2 = ThreatModel("l2", math.inf, box)
    oracle = Oracle(model, output="labels", num_samples=len(x))
    x_h2, t_h2 = timed(lambda: hopskipjump(oracle, x, y, l2, max_queries=max(
        30, int(art_xgb.queries / len(x))), generator=torch.Generator().manual_seed(0)))
    rows.append(row("advlab HopSkipJump L2 (ZOO's budget)", model, x, y, x_h2, l2,
                    float(oracle.per_sample.float().mean()), t_h2))
    header = ["attack", "success", "median L∞", "median L2", "median L1", "queries/sample",
              "seconds"]
    print(f"## Tree ensembles: XGBoost (20 trees, depth 4) on NSL-KDD, {len(x)} clean-correct "
          f"test records, box [0, 1] (test accuracy {record['test_accuracy']:.1%})\n")
    print(table(header, rows) + "\n")

    from sklearn.tree import DecisionTreeClassifier

    log("training a decision tree (depth 8) ...")
    tree = DecisionTreeClassifier(max_depth=8, random_state=0).fit(data.x_train.numpy(),
                                                                   data.y_train.numpy())
    probe = data.x_train[:256].numpy()
    single = TreeModel("random-forest", tree, parse("random-forest", tree, 2, x.shape[1], probe))
    with torch.no_grad():
        right = (single(data.x_test).argmax(1) == data.y_test).nonzero()[:, 0][:n]
    x, y = data.x_test[right], data.y_test[right]
    rows = []
    x_dt, t_dt = timed(lambda: DecisionTreeAttack(SklearnClassifier(tree, clip_values=(0., 1.)),
                                                  verbose=False).generate(x.numpy()))
    rows.append(row("ART DecisionTreeAttack", single, x, y, torch.from_numpy(x_dt).float(),
                    threat, None, t_dt))
    for norm in ("linf", "l1"):
        th = ThreatModel(norm, math.inf, box)
        x_m, t_m = timed(lambda th=th: kantchelian_milp(single, x, y, th))
        rows.append(row(f"advlab MILP {norm}", single, x, y, x_m, th, None, t_m))
    print(f"## A decision tree (depth 8) on NSL-KDD, {len(x)} clean-correct test records, box "
          "[0, 1]\n")
    print(table(header, rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)  # ART draws from NumPy's global generator
    run(args.nsl_kdd, args.n, args.quick)


if __name__ == "__main__":
    main()

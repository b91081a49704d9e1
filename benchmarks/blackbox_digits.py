"""Black-box attacks on the digits CNN: the acceptance figures of docs/blackbox.md.

    python benchmarks/blackbox_digits.py --part all --out runs/blackbox/digits.json \\
        --figure docs/figures/blackbox_transfer.svg

Parts (``--part``, repeatable): ``substitute`` (Papernot et al. 2017: 10 seed samples per class,
6 augmentation rounds, agreement with the oracle on the test set, FGSM and PGD transfer per eps),
``square`` (Square L∞ at eps 0.3, score-based, per-sample queries), ``hopskipjump`` (L2, 5,000
queries, against C&W's white-box median on the same samples) and ``matrix`` (transferability
matrix of PGD L∞ at ``--matrix-eps`` over five models, with the heat map). The target is the
digits small_cnn of ``benchmarks/common.py`` (28×28 upsampled digits, 5 epochs). Every figure
is measured here; none is a constant. Markdown goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from advlab import ThreatModel
from advlab.attacks import carlini_wagner_l2, hopskipjump, square
from advlab.attacks.oracle import Oracle
from advlab.attacks.substitute import seed_set, train_substitute
from advlab.attacks.transfer import transfer
from advlab.evaluation import transferability_matrix
from advlab.models import new_model, train_classifier
from advlab.report.plots import transfer_figure
from advlab.scoring import score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Subject, digits_subject, environment, fmt, log, table  # noqa: E402

EPS_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def predictions(model: Any, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


def correct_samples(subject: Subject, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test samples the target classifies correctly."""
    x, y = subject.dataset.x_test, subject.dataset.y_test
    ok = predictions(subject.model, x) == y
    return x[ok][:n], y[ok][:n]


def part_substitute(subject: Subject, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    ds = subject.dataset
    y_oracle = predictions(subject.model, ds.x_test)  # the evaluator's view, not queried
    idx = seed_set(ds.y_train, args.per_class, generator=torch.Generator().manual_seed(args.seed))
    sub = new_model("small_cnn", {"in_shape": list(ds.input_shape), "classes": ds.num_classes},
                    seed=args.seed + 1)
    oracle = Oracle(subject.model, output="labels")
    t0 = time.perf_counter()
    result = train_substitute(oracle, ds.x_train[idx], sub, rounds=args.rounds, lam=0.1, tau=3,
                              epochs=10, domain=ds.domain, holdout=(ds.x_test, y_oracle),
                              seed=args.seed, progress=True)
    seconds = time.perf_counter() - t0
    log(f"substitute: {result.queries} queries, agreement {result.agreement:.3f}")
    rows = []
    for attack, params in (("fgsm", {}), ("pgd", {"steps": 40})):
        for eps in EPS_GRID:
            threat = ThreatModel("linf", eps, ds.domain)
            tr = transfer(result.model, subject.model, ds.x_test, ds.y_test, threat,
                          attack=attack, params=params,
                          generator=torch.Generator().manual_seed(args.seed))
            rows.append({"attack": attack, "eps": eps, "transfer_success": tr.success_rate,
                         "substitute_success": tr.source_success_rate})
            log(f"transfer {attack} eps {eps}: {tr.success_rate:.3f}")
    # the same PGD with per-sample early stopping (first point across the substitute's boundary)
    threat = ThreatModel("linf", 0.3, ds.domain)
    tr = transfer(result.model, subject.model, ds.x_test, ds.y_test, threat, attack="pgd",
                  params={"steps": 40, "early_stop": True},
                  generator=torch.Generator().manual_seed(args.seed))
    rows.append({"attack": "pgd early_stop=True", "eps": 0.3,
                 "transfer_success": tr.success_rate,
                 "substitute_success": tr.source_success_rate})
    return {"seed_samples": int(len(idx)), "rounds": args.rounds, "queries": result.queries,
            "agreement": result.agreement, "history": result.history, "transfer": rows,
            "seconds": round(seconds, 1), "n_test": int(len(ds.y_test))}, result.model


def part_square(subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    x, y = correct_samples(subject, args.n)
    threat = ThreatModel("linf", 0.3, subject.dataset.domain)
    oracle = Oracle(subject.model, output="probabilities", num_samples=len(x))
    t0 = time.perf_counter()
    x_adv = square(oracle, x, y, threat, max_queries=args.square_queries, p_init=args.p_init,
                   generator=torch.Generator().manual_seed(args.seed))
    seconds = time.perf_counter() - t0
    s = score(subject.model, x, y, x_adv, threat)
    assert oracle.per_sample is not None
    q = oracle.per_sample[s.success].double()
    out = {"n": len(x), "eps": 0.3, "max_queries": args.square_queries, "p_init": args.p_init,
           "success_rate": float(s.success.float().mean()),
           "median_queries": float(q.median()) if q.numel() else math.nan,
           "mean_queries": float(q.mean()) if q.numel() else math.nan,
           "total_queries": oracle.queries, "seconds": round(seconds, 1)}
    log(f"square: {out}")
    return out


def part_hopskipjump(subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    x, y = correct_samples(subject, args.n)
    threat = ThreatModel("l2", math.inf, subject.dataset.domain)
    oracle = Oracle(subject.model, output="labels", num_samples=len(x))
    t0 = time.perf_counter()
    x_hsj = hopskipjump(oracle, x, y, threat, max_queries=args.hsj_queries,
                        generator=torch.Generator().manual_seed(args.seed))
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    x_cw = carlini_wagner_l2(subject.model, x, y, threat)
    cw_seconds = time.perf_counter() - t1
    s_hsj, s_cw = (score(subject.model, x, y, xa, threat) for xa in (x_hsj, x_cw))
    assert oracle.per_sample is not None
    med_hsj = float(s_hsj.l2[s_hsj.success].median())
    med_cw = float(s_cw.l2[s_cw.success].median())
    out = {"n": len(x), "max_queries": args.hsj_queries,
           "success_rate": float(s_hsj.success.float().mean()),
           "median_l2": med_hsj, "cw_success_rate": float(s_cw.success.float().mean()),
           "cw_median_l2": med_cw, "ratio": med_hsj / med_cw,
           "max_queries_used": int(oracle.per_sample.max()),
           "median_queries_used": float(oracle.per_sample.double().median()),
           "seconds": round(seconds, 1), "cw_seconds": round(cw_seconds, 1)}
    log(f"hopskipjump: {out}")
    return out


def part_matrix(subject: Subject, args: argparse.Namespace,
                substitute_model: Any | None) -> dict[str, Any]:
    from advlab.defenses.adversarial_training import adversarial_train

    ds = subject.dataset
    models: dict[str, Any] = {"CNN (target)": subject.model}
    other = train_classifier(ds, "small_cnn", epochs=5, lr=2e-3, batch_size=64, val_fraction=0,
                             seed=1, progress=False)
    models["CNN seed 1"] = other.model
    models["MLP"] = train_classifier(ds, "mlp", epochs=10, lr=1e-3, batch_size=64,
                                     val_fraction=0, seed=0, progress=False).model
    log("training the PGD-AT CNN (L∞ 0.3) ...")
    robust = new_model("small_cnn", {"in_shape": list(ds.input_shape), "classes": 10}, seed=2)
    adversarial_train(robust, (ds.x_train, ds.y_train), ThreatModel("linf", 0.3, ds.domain),
                      method="pgd-at", epochs=args.at_epochs, lr=2e-3, batch_size=64,
                      eps_warmup=max(1, args.at_epochs // 2), seed=2, progress=False)
    models["CNN PGD-AT"] = robust.eval()
    if substitute_model is not None:
        models["substitute"] = substitute_model
    threat = ThreatModel("linf", args.matrix_eps, ds.domain)
    matrix = transferability_matrix(models, models, ds.x_test, ds.y_test, threat, attack="pgd",
                                    params={"steps": 40}, seed=args.seed)
    if args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        args.figure.write_text(transfer_figure(matrix.as_dict()) or "")
        log(f"wrote {args.figure}")
    return {"matrix": matrix.as_dict(), "markdown": matrix.to_markdown()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", action="append",
                   choices=("substitute", "square", "hopskipjump", "matrix", "all"))
    p.add_argument("--n", type=int, default=100, help="samples for square and hopskipjump")
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--square-queries", type=int, default=10_000)
    p.add_argument("--p-init", type=float, default=0.05)
    p.add_argument("--hsj-queries", type=int, default=5000)
    p.add_argument("--at-epochs", type=int, default=5)
    p.add_argument("--matrix-eps", type=float, default=0.15,
                   help="L∞ budget of the transferability matrix (0.3 saturates it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON file for the figures (merged)")
    p.add_argument("--figure", type=Path, help="SVG file for the transferability heat map")
    args = p.parse_args()
    torch.set_num_threads(1)
    parts = set(args.part or ["all"])
    if "all" in parts:
        parts = {"substitute", "square", "hopskipjump", "matrix"}
    subject = digits_subject(450)
    log(f"target: digits small_cnn, test accuracy {subject.test_accuracy:.3f}")
    results: dict[str, Any] = {}
    if args.out is not None and args.out.exists():
        results = json.loads(args.out.read_text())
    results["environment"] = environment()
    results["target_test_accuracy"] = subject.test_accuracy
    sub_model = None
    if "substitute" in parts:
        results["substitute"], sub_model = part_substitute(subject, args)
    elif "matrix" in parts:  # the matrix's substitute is trained exactly as in part_substitute
        ds = subject.dataset
        idx = seed_set(ds.y_train, args.per_class,
                       generator=torch.Generator().manual_seed(args.seed))
        sub_model = new_model("small_cnn", {"in_shape": list(ds.input_shape),
                                            "classes": ds.num_classes}, seed=args.seed + 1)
        train_substitute(Oracle(subject.model), ds.x_train[idx], sub_model, rounds=args.rounds,
                         lam=0.1, tau=3, epochs=10, domain=ds.domain, seed=args.seed)
    if "square" in parts:
        results["square"] = part_square(subject, args)
    if "hopskipjump" in parts:
        results["hopskipjump"] = part_hopskipjump(subject, args)
    if "matrix" in parts:
        results["matrix"] = part_matrix(subject, args, sub_model)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(r: dict[str, Any]) -> None:
    print(f"Target: digits small_cnn, test accuracy {fmt(r['target_test_accuracy'])}; "
          f"{r['environment']}\n")
    if "substitute" in r:
        s = r["substitute"]
        print(f"Substitute: {s['seed_samples']} seed samples, {s['rounds']} rounds, "
              f"{s['queries']} queries, agreement {fmt(s['agreement'])} on {s['n_test']} test "
              f"images ({s['seconds']} s)\n")
        print(table(["round", "points", "queries", "agreement"],
                    [[int(h["round"]), int(h["size"]), int(h["queries"]), fmt(h["agreement"])]
                     for h in s["history"]]) + "\n")
        print(table(["attack", "eps", "transfer success", "white-box on substitute"],
                    [[t["attack"], t["eps"], fmt(t["transfer_success"]),
                      fmt(t["substitute_success"])] for t in s["transfer"]]) + "\n")
    if "square" in r:
        q = r["square"]
        print(f"Square L∞ eps {q['eps']}: success {fmt(q['success_rate'])} on {q['n']}, median "
              f"{q['median_queries']:.0f} queries per success (mean {q['mean_queries']:.1f}), "
              f"budget {q['max_queries']}, p_init {q['p_init']} ({q['seconds']} s)\n")
    if "hopskipjump" in r:
        h = r["hopskipjump"]
        print(f"HopSkipJump L2, {h['max_queries']} queries: success {fmt(h['success_rate'])} on "
              f"{h['n']}, median L2 {fmt(h['median_l2'])}; C&W success "
              f"{fmt(h['cw_success_rate'])}, median L2 {fmt(h['cw_median_l2'])}; ratio "
              f"{fmt(h['ratio'])}; most queries used by a sample {h['max_queries_used']} "
              f"({h['seconds']} s, C&W {h['cw_seconds']} s)\n")
    if "matrix" in r:
        print(r["matrix"]["markdown"] + "\n")


if __name__ == "__main__":
    main()

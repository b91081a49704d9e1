"""Black-box evasion of an Android malware detector on TUANDROMD, adding features only.

    python benchmarks/blackbox_tuandromd.py --data /work/shared/data/tuandromd \\
        --out runs/blackbox/tuandromd.json

The target is an MLP trained on TUANDROMD's 241 binary permission/API features. Its Domain makes
every feature binary and increase-only (an app can gain a permission, not lose one it needs), so
every attack below only adds features. The attacker never touches the target's gradients:

* transfer from a surrogate trained on the same data (another architecture and seed), crafted
  with JSMA (L0, at most k added features) and PGD (L∞ eps 1: any number of additions);
* transfer from a Papernot et al. (2017) substitute trained from the target's labels only
  (10 seed apps per class, 6 rounds, lambda = 1 so that a step flips a binary feature);
* HopSkipJump, decision-based, directly against the target's labels (L2, minimal norm).

The evasion rate is the share of the test malware the target detects that it classifies as
goodware after the attack (and inside the threat model). Markdown to stdout, progress to stderr.
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
from advlab.attacks import hopskipjump
from advlab.attacks.oracle import Oracle
from advlab.attacks.substitute import seed_set, train_substitute
from advlab.attacks.transfer import transfer
from advlab.data import load
from advlab.models import new_model, train_classifier
from advlab.scoring import score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, fmt, log, table  # noqa: E402

MALWARE = 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding TUANDROMD.csv")
    p.add_argument("--budgets", default="5,10,20", help="JSMA L0 budgets (added features)")
    p.add_argument("--hsj-queries", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = load("tuandromd", args.data, seed=args.seed)
    target = train_classifier(ds, "mlp", epochs=10, seed=args.seed, progress=False)
    model = target.model
    log(f"target MLP: test accuracy {target.metrics['test_accuracy']:.3f}")
    with torch.no_grad():
        pred = model(ds.x_test).argmax(1)
    detected = (ds.y_test == MALWARE) & (pred == MALWARE)
    x, y = ds.x_test[detected], ds.y_test[detected]
    log(f"{len(y)} test malware detected by the target (of {int((ds.y_test == MALWARE).sum())})")
    rows: list[dict[str, Any]] = []

    surrogate = train_classifier(ds, "mlp", hidden=(64,), epochs=10, seed=args.seed + 1,
                                 progress=False).model
    idx = seed_set(ds.y_train, 10, generator=torch.Generator().manual_seed(args.seed))
    sub = new_model("mlp", {"in_features": 241, "classes": 2, "hidden": [64]}, seed=args.seed + 2)
    oracle = Oracle(model, output="labels")
    t0 = time.perf_counter()
    result = train_substitute(oracle, ds.x_train[idx], sub, rounds=6, lam=1.0, tau=3, epochs=10,
                              domain=ds.domain, holdout=(ds.x_test, pred), seed=args.seed)
    log(f"substitute: {result.queries} queries, agreement {result.agreement:.3f} "
        f"({time.perf_counter() - t0:.0f} s)")
    surrogates = {"same-data surrogate": surrogate, "substitute (labels only)": result.model}
    for name, source in surrogates.items():
        for k in (int(v) for v in args.budgets.split(",")):
            threat = ThreatModel("l0", k, ds.domain)
            tr = transfer(source, model, x, y, threat, attack="jsma", params={"gamma": 1.0})
            rows.append(_row(name, f"JSMA, ≤ {k} added features", tr.success_rate,
                             tr.source_success_rate, x, tr.x_adv, tr.success))
        threat = ThreatModel("linf", 1.0, ds.domain)
        tr = transfer(source, model, x, y, threat, attack="pgd", params={"steps": 40},
                      generator=torch.Generator().manual_seed(args.seed))
        rows.append(_row(name, "PGD L∞ 1 (any number)", tr.success_rate,
                         tr.source_success_rate, x, tr.x_adv, tr.success))
    threat = ThreatModel("l2", math.inf, ds.domain)
    hsj_oracle = Oracle(model, output="labels", num_samples=len(x))
    t0 = time.perf_counter()
    x_adv = hopskipjump(hsj_oracle, x, y, threat, max_queries=args.hsj_queries,
                        generator=torch.Generator().manual_seed(args.seed))
    seconds = time.perf_counter() - t0
    s = score(model, x, y, x_adv, threat)
    rows.append(_row("HopSkipJump on the target", f"decision-based L2, {args.hsj_queries} "
                     "queries", float(s.success.float().mean()), math.nan, x, x_adv, s.success))
    for k in (int(v) for v in args.budgets.split(",")):
        within = s.success & (s.l0 <= k)
        rows.append(_row("HopSkipJump on the target", f"… of which ≤ {k} added features",
                         float(within.float().mean()), math.nan, x, x_adv, within))
    out = {"environment": environment(), "target_test_accuracy": target.metrics["test_accuracy"],
           "malware_detected": int(len(y)), "substitute": result.record(), "rows": rows,
           "hsj_seconds": round(seconds, 1), "hsj_total_queries": hsj_oracle.queries}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"Target MLP on TUANDROMD: test accuracy {fmt(out['target_test_accuracy'])}; "
          f"{len(y)} detected test malware attacked; {environment()}\n")
    print(f"Substitute: {result.queries} label queries, agreement {fmt(result.agreement or 0)} "
          "with the target on the test split\n")
    print(table(["attacker", "attack", "evasion rate", "white-box on source",
                 "median added features"],
                [[r["attacker"], r["attack"], fmt(r["evasion_rate"]),
                  fmt(r["source_success"]), fmt(r["median_added"], 1)] for r in rows]))


def _row(attacker: str, attack: str, rate: float, source: float, x: torch.Tensor,
         x_adv: torch.Tensor, success: torch.Tensor) -> dict[str, Any]:
    added = (x_adv - x).flatten(1).gt(0).sum(1)[success].double()
    assert bool((x_adv >= x).all()), "an attack removed a feature"
    row = {"attacker": attacker, "attack": attack, "evasion_rate": rate,
           "source_success": source,
           "median_added": float(added.median()) if added.numel() else math.nan}
    log(str(row))
    return row


if __name__ == "__main__":
    main()

"""Square (score-based) and HopSkipJump (decision-based) attacks are query-efficient.

Papers: Andriushchenko, Croce, Flammarion, Hein, "Square Attack", ECCV 2020, Table 2 (MNIST
L∞ eps 0.3: 100 % success, mean 44 queries... on undefended models a few hundred at most);
Chen, Jordan, Wainwright, "HopSkipJumpAttack", IEEE S&P 2020, Fig. 4 (MNIST: the median L2
distance approaches the white-box C&W's within about 1,000–10,000 queries). Here: the standard
``small_cnn``; Square L∞ at eps 0.2 with 1,000 queries (300 in --quick) against white-box PGD-20
at the same eps; HopSkipJump L2 with 1,000 queries (300) against DeepFool's L2 (a white-box
minimal perturbation), on 100 test images (50). Scaled down: digits, small query budgets.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from advlab.attacks import deepfool, hopskipjump, pgd, square
from advlab.reproduce.common import (
    IMAGES,
    attack_score,
    dataset,
    image_protocol,
    standard_model,
    test_rows,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import outcome, pm, summarize
from advlab.threat import ThreatModel

PAPER = "Andriushchenko et al., ECCV 2020; Chen, Jordan, Wainwright, IEEE S&P 2020"
CLAIM = "query-efficient score- and decision-based attacks (near white-box results)"
DATASETS = IMAGES


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    n, queries = (50, 300) if config.quick else (100, 1000)
    x, y = test_rows(ds, n, config.device)
    linf = ThreatModel("linf", 0.2, ds.domain)
    l2 = ThreatModel("l2", math.inf, ds.domain)
    per_seed = []
    for s in config.seed_list:
        model = standard_model(config, config.dataset, s)
        sq = attack_score(model, x, y, linf, functools.partial(square, max_queries=queries),
                          seed=s)
        wb = attack_score(model, x, y, linf, functools.partial(pgd, steps=20), seed=s)
        hsj = attack_score(model, x, y, l2, functools.partial(hopskipjump, max_queries=queries),
                           seed=s)
        df = attack_score(model, x, y, l2, deepfool, seed=s)
        per_seed.append({"square": sq["success_on_correct"], "pgd": wb["success_on_correct"],
                         "hsj_success": hsj["success_on_correct"], "hsj_l2": hsj["median_l2"],
                         "deepfool_l2": df["median_l2"],
                         "hsj_over_deepfool": hsj["median_l2"] / df["median_l2"]})
    m = summarize(per_seed)
    ok = m["square"]["mean"] >= 0.9 * m["pgd"]["mean"] and m["hsj_over_deepfool"]["mean"] <= 2
    return outcome(
        figure=f"Square ({queries} queries) {pm(m['square'])} vs PGD {pm(m['pgd'])} at eps 0.2; "
               f"HopSkipJump median L2 {m['hsj_l2']['mean']:.2f} = "
               f"{m['hsj_over_deepfool']['mean']:.1f}× DeepFool's",
        metrics=m, seeds=config.seed_list, headline="square", ok=ok, scaled=True,
        reason="black-box attacks come close to white-box ones within the budget" if ok else
        "the query budget leaves them far from white-box results",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n) +
        f"; {queries} queries")

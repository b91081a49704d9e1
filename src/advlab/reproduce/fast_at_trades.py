"""Fast FGSM adversarial training and TRADES against PGD adversarial training.

Papers: Wong, Rice, Kolter, "Fast is better than free: Revisiting adversarial training", ICLR
2020, Table 1 (MNIST eps 0.3: FGSM with random start 97.5 % clean / 88.8 % PGD-50 robust vs
PGD-40 training 89.0 %); Zhang et al., "Theoretically Principled Trade-off between Robustness
and Accuracy" (TRADES), ICML 2019, Table 5 (MNIST eps 0.3: 96.1 % robust under FGSM-40... and
PGD). Here: three ``small_cnn`` trained by ``train_robust_classifier`` at L∞ eps 0.3 (the
papers' MNIST budget): ``fgsm-at`` (random start, 1.25·eps step, cyclic learning rate),
``trades`` (beta 6) and ``pgd-at`` (PGD-10; shared with ``pgd-madry``), 10 epochs (5 in
--quick), then PGD-50 (20 in --quick) robust accuracy on 450 test images (200). Scaled down:
digits, few epochs, one seed in --quick; the early stop on a PGD check of Wong et al. is the
best-robust-epoch selection of ``adversarial_train``.
"""

from __future__ import annotations

import functools
from typing import Any

from advlab.attacks import pgd
from advlab.reproduce.common import (
    IMAGES,
    attack_score,
    image_inputs,
    image_protocol,
    robust_model,
    seeds_for_training,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import bar_plot, outcome, pm, summarize
from advlab.threat import ThreatModel

PAPER = "Wong, Rice, Kolter, ICLR 2020; Zhang et al. (TRADES), ICML 2019"
CLAIM = "MNIST eps 0.3: FGSM-RS training 88.8 % PGD-50 robust, as PGD training (89.0 %)"
DATASETS = IMAGES
METHODS = ("fgsm-at", "trades", "pgd-at")


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 200, 450)
    steps = 20 if config.quick else 50
    threat = ThreatModel("linf", 0.3, ds.domain)
    seeds = seeds_for_training(config)
    per_seed = []
    for s in seeds:
        row = {}
        for method in METHODS:
            r = attack_score(robust_model(config, config.dataset, s, method), x, y, threat,
                             functools.partial(pgd, steps=steps), seed=s)
            row[f"{method}_robust"], row[f"{method}_clean"] = r["robust_accuracy"], \
                r["clean_accuracy"]
        per_seed.append(row)
    m = summarize(per_seed)
    fast, pgd_at, trades = m["fgsm-at_robust"], m["pgd-at_robust"], m["trades_robust"]
    ok = fast["mean"] >= pgd_at["mean"] - 0.05 and pgd_at["mean"] >= 0.5
    return outcome(
        figure=f"PGD-{steps} robust accuracy at eps 0.3: FGSM-RS AT {pm(fast)}, TRADES "
               f"{pm(trades)}, PGD-AT {pm(pgd_at)}",
        metrics=m, seeds=seeds, headline="fgsm-at_robust", ok=ok, scaled=True,
        reason="fast AT matches PGD-AT" if ok else
        "PGD-AT itself is weak here (see pgd-madry)" if pgd_at["mean"] < 0.5 else
        "fast AT falls short of PGD-AT (catastrophic overfitting?)",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n) +
        f"; {len(seeds)} seed(s)",
        plots=[bar_plot("Adversarial training variants (eps 0.3)", "accuracy",
                        ["FGSM-RS AT", "TRADES", "PGD-AT"],
                        {"clean": [m[f"{k}_clean"] for k in METHODS],
                         f"PGD-{steps}": [m[f"{k}_robust"] for k in METHODS]})])

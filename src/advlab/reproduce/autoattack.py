"""AutoAttack: the per-sample worst case over diverse attacks is lower than PGD's.

Papers: Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020, Table 2 (robust accuracy under AutoAttack is below
every reported PGD figure, for most defenses by 1–10 points), and Carlini et al., "On
Evaluating Adversarial Robustness", 2019 (the checklist: report the per-sample worst case).
Here: the standard ``small_cnn`` at L∞ eps 0.1 (where PGD leaves accuracy); PGD-20 vs
``attacks.autoattack`` (standard version: APGD-CE, APGD-T, FAB-T, Square; 100 steps, 9 targets,
5,000 queries; 20 steps, 3 targets, 300 queries in --quick) on 200 test images (100). Scaled
down: digits, an undefended model.
"""

from __future__ import annotations

import functools
from typing import Any

from advlab.attacks import autoattack, pgd
from advlab.reproduce.common import (
    IMAGES,
    attack_score,
    image_inputs,
    image_protocol,
    standard_model,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import outcome, pm, summarize
from advlab.threat import ThreatModel

PAPER = "Croce, Hein, ICML 2020; Carlini et al. 2019"
CLAIM = "per-sample worst case over attacks: AutoAttack's robust accuracy is below PGD's"
DATASETS = IMAGES


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 100, 200)
    threat = ThreatModel("linf", 0.1, ds.domain)
    knobs = dict(steps=20, n_targets=3, max_queries=300) if config.quick else {}
    per_seed = []
    for s in config.seed_list:
        model = standard_model(config, config.dataset, s)
        per_seed.append({
            "pgd": attack_score(model, x, y, threat, functools.partial(pgd, steps=20),
                                seed=s)["robust_accuracy"],
            "autoattack": attack_score(model, x, y, threat,
                                       functools.partial(autoattack, **knobs),
                                       seed=s)["robust_accuracy"]})
    m = summarize(per_seed)
    ok = m["autoattack"]["mean"] <= m["pgd"]["mean"]
    return outcome(
        figure=f"robust accuracy at eps 0.1: PGD-20 {pm(m['pgd'])}, AutoAttack "
               f"{pm(m['autoattack'])}",
        metrics=m, seeds=config.seed_list, headline="autoattack", ok=ok, scaled=True,
        reason="the ensemble's worst case is at or below PGD's" if ok else
        "AutoAttack leaves more accuracy than PGD",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n))

"""Attacks on the logits break defensive distillation.

Paper: Carlini, Wagner, "Defensive Distillation is Not Robust to Adversarial Examples", 2016
(and S&P 2017, Table VI): on distilled MNIST networks their attacks succeed 100 % of the time,
JSMA on the logits (JSMA-Z) too; distillation only saturates the softmax. Here: the distilled
``small_cnn`` of ``distillation`` (T = 100), C&W L2 (the ``carlini_wagner`` configuration) and
JSMA-Z (``use_logits=True``) against it, beside JSMA on the softmax, on 300 test images (100 in
--quick). Scaled down: digits, fewer epochs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from advlab.attacks import jsma
from advlab.reproduce.carlini_wagner import attack as cw_attack
from advlab.reproduce.common import (
    IMAGES,
    attack_score,
    distilled_model,
    image_inputs,
    image_protocol,
    jsma_threat,
    random_targets,
    standard_model,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import bar_plot, outcome, pm, summarize
from advlab.threat import ThreatModel

PAPER = "Carlini, Wagner, arXiv:1607.04311, 2016"
CLAIM = "attacks on the logits succeed (100 %) against distilled networks"
DATASETS = IMAGES


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 100, 300)
    l0 = jsma_threat(ds)
    l2 = ThreatModel("l2", math.inf, ds.domain)
    attacks = {"jsma": (functools.partial(jsma, gamma=0.145), l0),
               "jsma_z": (functools.partial(jsma, gamma=0.145, use_logits=True), l0),
               "cw": (cw_attack(config.quick), l2)}
    per_seed = []
    for s in config.seed_list:
        target = random_targets(y, ds.num_classes, s)
        row = {}
        for label, model in (("standard", standard_model(config, config.dataset, s)),
                             ("distilled", distilled_model(config, config.dataset, s))):
            for name, (attack, threat) in attacks.items():
                row[f"{name}_{label}"] = attack_score(
                    model, x, y, threat, attack, seed=s,
                    target=None if name == "cw" else target)["success_on_correct"]
        per_seed.append(row)
    m = summarize(per_seed)
    cw, jz = m["cw_distilled"], m["jsma_z_distilled"]
    ok = cw["mean"] >= 0.95
    return outcome(
        figure=f"against the distilled network: C&W {pm(cw)}, JSMA-Z {pm(jz)}, JSMA (softmax) "
               f"{pm(m['jsma_distilled'])}",
        metrics=m, seeds=config.seed_list, headline="cw_distilled", ok=ok, scaled=True,
        reason="logit attacks succeed where the softmax attack fails" if ok else
        "C&W does not succeed on the distilled network",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n),
        plots=[bar_plot("Success before/after distillation", "success among correct",
                        ["standard", "distilled (T = 100)"],
                        {"JSMA (softmax)": [m["jsma_standard"], m["jsma_distilled"]],
                         "JSMA-Z (logits)": [m["jsma_z_standard"], jz],
                         "C&W L2": [m["cw_standard"], cw]})])

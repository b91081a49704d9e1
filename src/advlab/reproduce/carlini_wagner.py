"""C&W L2 succeeds on every image.

Paper: Carlini, Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017,
Table IV: the L2 attack succeeds on 100 % of MNIST images (mean L2 1.36 targeted, average
case). Here: the standard ``small_cnn``, untargeted ``carlini_wagner_l2`` (9 binary-search
steps × 100 steps; 4 × 50 in --quick) on 300 test images (100 in --quick), success among correct.
Scaled down: digits, untargeted (the paper's average case draws one random target).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from advlab.attacks import carlini_wagner_l2
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

PAPER = "Carlini, Wagner, IEEE S&P 2017"
CLAIM = "100 % success on MNIST (Table IV), also on distilled networks"
DATASETS = IMAGES


def attack(quick: bool) -> Any:
    """The C&W configuration of the reproduction (shared with ``distillation_broken``)."""
    if quick:
        return functools.partial(carlini_wagner_l2, binary_search_steps=4, steps=50)
    return functools.partial(carlini_wagner_l2, binary_search_steps=9, steps=100)


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 100, 300)
    threat = ThreatModel("l2", math.inf, ds.domain)
    per_seed = [attack_score(standard_model(config, config.dataset, s), x, y, threat,
                             attack(config.quick), seed=s) for s in config.seed_list]
    m = summarize(per_seed)
    rate = m["success_on_correct"]
    ok = rate["mean"] >= 0.99
    return outcome(
        figure=f"{pm(rate)} success, median L2 {m['median_l2']['mean']:.2f}",
        metrics=m, seeds=config.seed_list, headline="success_on_correct", ok=ok,
        scaled=config.dataset != "mnist" or config.quick,
        reason="C&W fools every image" if ok else f"C&W missed {1 - rate['mean']:.1%}",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n))

"""FGSM fools a standard network at eps 0.25.

Paper: Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
§6: at L∞ eps 0.25 a shallow softmax classifier has a 99.9 % error rate on MNIST and a maxout
network 89.4 %. Here: the standard ``small_cnn`` (``common.standard_model``), FGSM at eps 0.25
on the first 450 test images (200 in --quick), success among the images the model classifies
correctly (``advlab.scoring.score``). Scaled down: digits instead of MNIST by default (no
download; ``--dataset mnist --mnist DIR`` runs the paper's data); the claim is "most".
"""

from __future__ import annotations

from typing import Any

from advlab.attacks import fgsm
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

PAPER = "Goodfellow, Shlens, Szegedy, ICLR 2015"
CLAIM = "MNIST, L∞ eps 0.25: 89.4 % (maxout) to 99.9 % (softmax) of FGSM examples misclassified"
DATASETS = IMAGES
EPS = 0.25


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 200, 450)
    threat = ThreatModel("linf", EPS, ds.domain)
    per_seed = [attack_score(standard_model(config, config.dataset, s), x, y, threat, fgsm,
                             seed=s) for s in config.seed_list]
    m = summarize(per_seed)
    rate = m["success_on_correct"]
    return outcome(
        figure=f"{pm(rate)} of correctly classified images fooled at eps {EPS} "
               f"(clean accuracy {pm(m['clean_accuracy'])})",
        metrics=m, seeds=config.seed_list, headline="success_on_correct",
        ok=rate["mean"] > 0.5, scaled=config.dataset != "mnist" or config.quick,
        reason="most FGSM examples fool the model, as in the paper"
        if rate["mean"] > 0.5 else "FGSM fools fewer than half of the images",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n))

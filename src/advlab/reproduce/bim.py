"""BIM (iterative FGSM) beats one FGSM step at the same eps.

Paper: Kurakin, Goodfellow, Bengio, "Adversarial examples in the physical world", ICLR workshop
2017, Fig. 2: top-1 accuracy under "basic iterative" and "iterative least-likely" is below that
under "fast" at every eps (ImageNet, Inception v3). Here: the standard ``small_cnn``, FGSM and
BIM (10 steps, the paper's min(eps + 4, 1.25 eps) rule becomes advlab's 1.25 eps / steps step),
L∞ eps 0.05–0.2, success among correct images. Scaled down: digits instead of ImageNet
(the claim is about the attack, not the data), 200 images in --quick.
"""

from __future__ import annotations

from typing import Any

from advlab.attacks import bim, fgsm
from advlab.reproduce.common import (
    IMAGES,
    attack_score,
    image_inputs,
    image_protocol,
    standard_model,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import line_plot, mean_std, outcome, pm
from advlab.threat import ThreatModel

PAPER = "Kurakin, Goodfellow, Bengio, ICLR workshop 2017"
CLAIM = "iterative attacks beat one step at the same eps (Fig. 2, every eps)"
DATASETS = IMAGES
GRID = (0.05, 0.1, 0.15, 0.2)


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 200, 450)
    curves: dict[str, list[dict[str, Any]]] = {"FGSM": [], "BIM-10": []}
    for eps in GRID:
        threat = ThreatModel("linf", eps, ds.domain)
        for label, attack in (("FGSM", fgsm), ("BIM-10", bim)):
            curves[label].append(mean_std([attack_score(
                standard_model(config, config.dataset, s), x, y, threat, attack,
                seed=s)["success_on_correct"] for s in config.seed_list]))
    metrics = {f"{label.lower()}_eps_{eps:g}": stat for label, stats in curves.items()
               for eps, stat in zip(GRID, stats, strict=False)}
    gaps = [b["mean"] - f["mean"] for f, b in zip(curves["FGSM"], curves["BIM-10"], strict=False)]
    ok = min(gaps) >= 0 and max(gaps) > 0.05
    mid = GRID.index(0.1)
    return outcome(
        figure=f"at eps 0.1: BIM {pm(curves['BIM-10'][mid])} vs FGSM {pm(curves['FGSM'][mid])} "
               f"success; BIM ≥ FGSM at {sum(g >= 0 for g in gaps)}/{len(GRID)} eps",
        metrics=metrics, seeds=config.seed_list, headline="bim-10_eps_0.1", ok=ok,
        scaled=True, reason="BIM's success is at least FGSM's at every eps" if ok else
        f"BIM is not above FGSM everywhere (gaps {[round(g, 3) for g in gaps]})",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n),
        plots=[line_plot("Success vs eps (L∞)", "eps", "success among correct",
                         {k: (GRID, v) for k, v in curves.items()})])

"""Adversarial label flips hurt an SVM far more than random flips at the same rate.

Papers: Biggio, Nelson, Laskov, "Support Vector Machines Under Adversarial Label Noise", ACML
2011, Fig. 2; Xiao, Xiao, Eckert, "Adversarial Label Flips Attack on Support Vector Machines"
(ALFA), ECAI 2012: at the same flip rate, adversarial flips raise the test error of an SVM far
more than random ones. Here: digits 7 vs 1 (Biggio et al.'s MNIST pair), 200 training rows
(100 in --quick) and up to 300 for the attacker's validation, an RBF ``SVC``;
``evaluation.poisoning_study.svm_poisoning_study`` with random and adversarial
(``poisoning.adversarial_label_flip``, greedy) flips at 5, 10 and 20 % (10 % max in --quick).
Scaled down: digits and a few hundred rows (the papers use a few hundred too).
"""

from __future__ import annotations

from typing import Any

from advlab.evaluation.poisoning_study import svm_poisoning_study
from advlab.reproduce.common import IMAGES, curve_stats, dataset, two_classes
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import line_plot, outcome, pm

PAPER = "Biggio, Nelson, Laskov, ACML 2011; Xiao et al. (ALFA) 2012"
CLAIM = "adversarial flips hurt an SVM far more than random flips at the same rate"
DATASETS = IMAGES


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    x, y, xt, yt = two_classes(ds, 7, 1)
    rate, n_train = (0.1, 100) if config.quick else (0.2, 200)
    n_val = min(300, x.shape[0] - n_train)
    series, metrics = {}, {}
    for mode in ("random", "adversarial"):
        summary, _ = svm_poisoning_study(x, y, xt, yt, attack="label-flip", mode=mode,
                                         kernel="rbf", n_train=n_train, n_val=n_val, rate=rate,
                                         seed=config.seed, seeds=len(config.seed_list),
                                         progress=False)
        levels, stats = curve_stats(summary["curve"], "test_error")
        series[mode] = (levels, stats)
        metrics[f"{mode}_error"] = stats[-1]
        metrics["clean_error"] = stats[0]
    adv, rnd = metrics["adversarial_error"], metrics["random_error"]
    ok = adv["mean"] > rnd["mean"] + 0.05 and adv["mean"] > 2 * max(rnd["mean"], 0.01)
    return outcome(
        figure=f"at {rate:.0%} flips: test error {pm(adv)} (adversarial) vs {pm(rnd)} (random),"
               f" clean {pm(metrics['clean_error'])}",
        metrics=metrics, seeds=config.seed_list, headline="adversarial_error", ok=ok,
        scaled=True, reason="adversarial flips hurt far more than random ones" if ok else
        "adversarial flips are not clearly worse than random ones",
        dataset=config.dataset, protocol=f"{config.dataset} 7 vs 1, {n_train} training rows, "
        "RBF SVC",
        plots=[line_plot("Label flips: SVM test error vs flip rate", "flip rate",
                         "test error", {k: v for k, v in series.items()})])

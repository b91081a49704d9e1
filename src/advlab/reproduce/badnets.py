"""BadNets: a small share of triggered, relabelled training images plants a backdoor.

Paper: Gu, Dolan-Gavitt, Garg, "BadNets: Identifying Vulnerabilities in the Machine Learning
Model Supply Chain", 2017, Table 1 (MNIST, single-target attack, pattern trigger): backdoor
success above 99 % with clean error unchanged (0.05 % → 0.06 % difference). Here:
``evaluation.poisoning_study.backdoor_study`` with a 3×3 checkerboard ``PatchTrigger`` in the
bottom-right corner, target class 0, 10 % of the training set poisoned, ``small_cnn`` (10
epochs, 5 in --quick); backdoor success on the test images not of class 0. Scaled down: digits
instead of MNIST (on 8×8 digits the patch covers 14 % of the image).
"""

from __future__ import annotations

from typing import Any

from advlab.evaluation.poisoning_study import backdoor_study
from advlab.poisoning import PatchTrigger
from advlab.reproduce.common import IMAGES, dataset, image_epochs
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import bar_plot, outcome, pm, summarize

PAPER = "Gu, Dolan-Gavitt, Garg, BadNets, 2017"
CLAIM = "MNIST: > 99 % backdoor success, clean accuracy kept"
DATASETS = IMAGES


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    size = 3
    trigger = PatchTrigger(size=size)
    per_seed = []
    for s in config.seed_list:
        summary, _ = backdoor_study(ds, trigger, 0, rate=0.1, epochs=image_epochs(config),
                                    seed=s, progress=False)
        per_seed.append({k: float(v) for k, v in summary["metrics"].items()})
    m = summarize(per_seed)
    bd = m["backdoor_success"]
    drop = m["clean_accuracy"]["mean"] - m["poisoned_accuracy"]["mean"]
    ok = bd["mean"] >= 0.9 and drop <= 0.02
    return outcome(
        figure=f"backdoor success {pm(bd)} at 10 % poisoning; clean accuracy "
               f"{pm(m['clean_accuracy'])} → {pm(m['poisoned_accuracy'])}",
        metrics=m, seeds=config.seed_list, headline="backdoor_success", ok=ok, scaled=True,
        reason="near-total backdoor success, clean accuracy kept" if ok else
        f"backdoor success {bd['mean']:.1%}, clean accuracy drop {drop:.1%}",
        dataset=config.dataset, protocol=f"{config.dataset}, {size}×{size} checkerboard, "
        "target 0, 10 % poisoned",
        plots=[bar_plot("BadNets", "rate", ["clean model", "backdoored model"],
                        {"test accuracy": [m["clean_accuracy"], m["poisoned_accuracy"]],
                         "backdoor success": [m["clean_model_backdoor_success"], bd]})])

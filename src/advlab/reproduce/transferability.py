"""FGSM examples transfer across models.

Paper: Papernot, McDaniel, Goodfellow, "Transferability in Machine Learning", arXiv:1605.07277,
2016, Fig. 3 (MNIST: DNN-to-DNN transfer ~38 % and more across learners), and Demontis et al.,
"Why Do Adversarial Attacks Transfer?", USENIX Security 2019. Here: FGSM at L∞ eps 0.25
crafted on the standard ``small_cnn`` of one seed (the surrogate) against another seed's CNN and
an MLP trained on the same data (``attacks.transfer.transfer``), 450 test images (200 in
--quick); the white-box rate for reference. Scaled down: digits, two victim architectures.
"""

from __future__ import annotations

from typing import Any

from advlab.attacks.transfer import transfer
from advlab.reproduce.common import IMAGES, image_inputs, image_protocol, standard_model
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import bar_plot, outcome, pm, summarize
from advlab.threat import ThreatModel

PAPER = "Papernot, McDaniel, Goodfellow 2016; Demontis et al., USENIX Security 2019"
CLAIM = "FGSM examples transfer well across models (tens of %, DNN to DNN and across learners)"
DATASETS = IMAGES


def run(config: Config) -> dict[str, Any]:
    ds, n, x, y = image_inputs(config, 200, 450)
    threat = ThreatModel("linf", 0.25, ds.domain)
    per_seed = []
    for s in config.seed_list:
        surrogate = standard_model(config, config.dataset, s)
        row = {}
        for label, victim in (("cnn", standard_model(config, config.dataset, s + 100)),
                              ("mlp", standard_model(config, config.dataset, s, "mlp"))):
            t = transfer(surrogate, victim, x, y, threat, attack="fgsm")
            row[f"to_{label}"] = t.success_rate
            row["white_box"] = float(t.source_success.float().mean())
        per_seed.append(row)
    m = summarize(per_seed)
    ok = min(m["to_cnn"]["mean"], m["to_mlp"]["mean"]) >= 0.3
    return outcome(
        figure=f"FGSM eps 0.25 transfers to another CNN {pm(m['to_cnn'])}, to an MLP "
               f"{pm(m['to_mlp'])} (white box {pm(m['white_box'])})",
        metrics=m, seeds=config.seed_list, headline="to_cnn", ok=ok, scaled=True,
        reason="most examples transfer across seeds and architectures" if ok else
        "transfer is weak",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n),
        plots=[bar_plot("Transfer of FGSM (eps 0.25)", "success among correct",
                        ["white box", "→ CNN (other seed)", "→ MLP"],
                        {"FGSM": [m["white_box"], m["to_cnn"], m["to_mlp"]]})])

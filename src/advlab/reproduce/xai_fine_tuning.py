"""XAI-driven fine-tuning after FGSM adversarial training (Al-Essa et al. 2022).

Paper: Al-Essa, Andresini, Appice, Malerba, "An XAI-based adversarial training approach for
cyber-threat detection" (XENIA), IEEE DASC 2022, Table 3: fine-tuning the adversarially trained
network on its SHAP values improves accuracy (clean and under attack) on NSL-KDD. Here: an MLP
(128-64) FGSM-adversarially trained (``adversarial_train``, ``fgsm-at`` with random start,
L∞ eps 0.1, mix 0.5, 5 epochs; 2 in --quick) on the training split (5,000 rows in --quick), then
``explain.xai_fine_tune`` with the XENIA protocol settings (SHAP of the label for training rows,
min-max scaled, 5 epochs; 2), accuracy on the test split and under FGSM (eps 0.1) crafted
against the AT network (gray box) on 2,000 test rows (500). The full protocol study is
benchmarks/xenia.py and docs/xai-security.md (another module's work). Scaled down: rows,
epochs.
"""

from __future__ import annotations

from typing import Any

import torch

from advlab.attacks import fgsm
from advlab.defenses.adversarial_training import adversarial_train
from advlab.explain import xai_fine_tune
from advlab.explain.robust_features import adversarial_set
from advlab.models import accuracy, new_model
from advlab.reproduce.common import SECURITY, dataset, sample_rows, security_protocol
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import bar_plot, outcome, pm, summarize
from advlab.threat import ThreatModel

PAPER = "Al-Essa, Andresini, Appice, Malerba, IEEE DASC 2022 (XENIA)"
CLAIM = "FGSM adversarial training, then SHAP-driven fine-tuning, improves accuracy"
DATASETS = SECURITY


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    quick = config.quick
    epochs, n_train, n_eval = (2, 5000, 500) if quick else (5, None, 2000)
    threat = ThreatModel("linf", 0.1, ds.domain)
    per_seed = []
    for s in config.seed_list:
        x, y = sample_rows(ds.x_train, ds.y_train, n_train or len(ds.y_train), s, config.device)
        at = new_model("mlp", {"in_features": x.shape[1], "classes": ds.num_classes,
                               "hidden": [128, 64]}, seed=s, device=config.device)
        adversarial_train(at, (x, y), threat, method="fgsm-at", mix=0.5, epochs=epochs,
                          seed=s, progress=False)
        at.eval()
        bg = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(s))[:100]]
        tuned = xai_fine_tune(at, x, y, background=bg, explain_train="label", scale="minmax",
                              epochs=epochs, seed=s).eval()
        xe, ye = sample_rows(ds.x_test, ds.y_test, n_eval, s, config.device)
        x_adv = adversarial_set(at, xe, ye, threat, fgsm, seed=s)
        xt, yt = ds.x_test.to(config.device), ds.y_test.to(config.device)
        per_seed.append({"at_clean": accuracy(at, xt, yt), "xai_clean": accuracy(tuned, xt, yt),
                         "at_fgsm": accuracy(at, x_adv, ye), "xai_fgsm": accuracy(tuned, x_adv,
                                                                                  ye)})
    m = summarize(per_seed)
    gain = m["xai_fgsm"]["mean"] - m["at_fgsm"]["mean"]
    ok = gain > 0 and m["xai_clean"]["mean"] >= m["at_clean"]["mean"] - 0.01
    return outcome(
        figure=f"under FGSM eps 0.1: AT {pm(m['at_fgsm'])} → AT+XAI {pm(m['xai_fgsm'])}; "
               f"clean {pm(m['at_clean'])} → {pm(m['xai_clean'])}",
        metrics=m, seeds=config.seed_list, headline="xai_fgsm", ok=ok, scaled=True,
        reason="fine-tuning on SHAP values raises accuracy under attack" if ok else
        f"fine-tuning changes accuracy under attack by {100 * gain:+.1f} points (issue 18 "
        "item 2: docs/xai-security.md)",
        dataset=config.dataset, protocol=security_protocol(config, config.dataset, n_eval),
        plots=[bar_plot("XAI fine-tuning", "accuracy", ["clean", "FGSM eps 0.1 (gray box)"],
                        {"AT": [m["at_clean"], m["at_fgsm"]],
                         "AT+XAI": [m["xai_clean"], m["xai_fgsm"]]})])

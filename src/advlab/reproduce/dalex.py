"""DALEX permutation importance: loss after permuting a feature minus loss before.

Paper: Biecek, "DALEX: Explainers for Complex Predictive Models in R", JMLR 2018, §3
(``model_parts``): the importance of a variable is the loss of the model on data where the
variable is permuted minus the loss on the original data. Here: ``explain.model_parts``
(cross-entropy, one-hot groups as one variable, 10 permutations; 3 in --quick) of the security
MLP on 5,000 training rows (2,000 in --quick). Checked: a column the model cannot see
(NSL-KDD's constant ``num_outbound_cmds``) gets importance exactly 0 and the top variable a
clearly positive loss increase. Scaled down: a subsample of rows.
"""

from __future__ import annotations

from typing import Any

import torch

from advlab.explain import feature_groups, model_parts
from advlab.reproduce.common import (
    SECURITY,
    dataset,
    sample_rows,
    security_protocol,
    standard_model,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import bar_plot, mean_std, outcome, summarize

PAPER = "Biecek, JMLR 2018"
CLAIM = "permutation importance = loss after permuting a variable − loss before"
DATASETS = (*SECURITY, "tuandromd")


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    n = 2000 if config.quick else 5000
    groups, names = feature_groups(ds.feature_names, ds.domain.one_hot_groups)
    per_seed, top = [], None
    for s in config.seed_list:
        x, y = sample_rows(ds.x_train, ds.y_train, n, s, config.device)
        imp = model_parts(standard_model(config, config.dataset, s), x, y, groups=groups,
                          names=names, permutations=3 if config.quick else 10,
                          generator=torch.Generator().manual_seed(s))
        mean = imp.mean
        constant = [i for i, g in enumerate(groups) if bool((x[:, g].std(0) == 0).all())]
        per_seed.append({"top_importance": float(mean.max()),
                         "constant_importance": float(mean[constant].abs().max())
                         if constant else 0.0})
        if top is None:
            top = [(names[i], float(mean[i])) for i in imp.ranking()[:5]]
    m = summarize(per_seed)
    ok = m["constant_importance"]["mean"] == 0 and m["top_importance"]["mean"] > 0.01
    assert top is not None
    return outcome(
        figure=f"top variables {', '.join(f'{k} (+{v:.3f})' for k, v in top[:3])}; "
               f"constant columns {m['constant_importance']['mean']:.3g}",
        metrics=m, seeds=config.seed_list, headline="top_importance", ok=ok,
        scaled=config.quick, scale=1.0, unit="",
        reason="the definition's invariants hold (unseen columns 0, top variable > 0)" if ok
        else "an invariant of the definition fails",
        dataset=config.dataset, protocol=security_protocol(config, config.dataset, n),
        plots=[bar_plot("Permutation importance (seed 0, cross-entropy increase)",
                        "loss increase", [k for k, _ in top],
                        {"importance": [mean_std([v]) for _, v in top]}, percent=False)])

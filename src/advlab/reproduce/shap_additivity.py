"""SHAP values add up to f(x) − E[f(background)].

Paper: Lundberg, Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017,
eq. 1 and Property 1 (local accuracy): the attributions sum to the model output minus its
expectation, ``Σφ = f(x) − E[f]``. Here: ``explain.shapley_sampling`` (permutation sampling,
one-hot groups as one player, 16 permutations; 4 in --quick) of the predicted class's logit of
the security MLP on 100 test rows (30), with the reference distribution a single row, the
training mean, so that ``E[f]`` is known exactly; the gap ``|Σφ − (f(x) − E[f])|`` relative to
``|f(x) − E[f]|``. (With a sampled background, ``Σφ`` matches the mean over the references
drawn, so the gap to ``E_b f(b)`` is sampling error that shrinks with the rounds.) Scaled
down: a few rows and permutations.
"""

from __future__ import annotations

from typing import Any

import torch

from advlab.explain import feature_groups, shapley_sampling
from advlab.reproduce.common import (
    SECURITY,
    dataset,
    sample_rows,
    security_protocol,
    standard_model,
)
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import outcome, summarize

PAPER = "Lundberg, Lee, NeurIPS 2017"
CLAIM = "additive attributions that sum to f(x) − E[f] (local accuracy)"
DATASETS = (*SECURITY, "tuandromd")


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    n, rounds = (30, 4) if config.quick else (100, 16)
    groups, _ = feature_groups(ds.feature_names, ds.domain.one_hot_groups)
    per_seed = []
    for s in config.seed_list:
        model = standard_model(config, config.dataset, s)
        x, _ = sample_rows(ds.x_test, ds.y_test, n, s, config.device)
        bg = ds.x_train.mean(0, keepdim=True).to(config.device)
        with torch.no_grad():
            target = model(x).argmax(1)
            fx = model(x).gather(1, target[:, None])[:, 0]
            ef = model(bg)[:, target].mean(0)
        phi = shapley_sampling(model, x, target, background=bg, n_samples=rounds, groups=groups,
                               generator=torch.Generator().manual_seed(s))
        first = [g[0] for g in groups]  # a group's columns all carry the group's value
        gap = (phi.flatten(1)[:, first].sum(1) - (fx - ef)).abs()
        per_seed.append({"relative_gap": float((gap / (fx - ef).abs().clamp_min(1e-6)).median()),
                         "absolute_gap": float(gap.median())})
    m = summarize(per_seed)
    ok = m["relative_gap"]["mean"] < 1e-3
    return outcome(
        figure=f"median additivity gap {m['relative_gap']['mean']:.1e} of |f(x) − E f| "
               f"({m['absolute_gap']['mean']:.1e} in logits)",
        metrics=m, seeds=config.seed_list, headline="relative_gap", ok=ok, scaled=config.quick,
        reason="Σφ = f(x) − E[f] up to float rounding" if ok else
        "the attributions do not add up",
        dataset=config.dataset, protocol=security_protocol(config, config.dataset, n) +
        f"; {rounds} permutations, reference: the training mean")

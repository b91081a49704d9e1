"""SHAP values add up to f(x) − E[f(background)].

Paper: Lundberg, Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017,
eq. 1 and Property 1 (local accuracy): the attributions sum to the model output minus its
expectation. Here: ``explain.shapley_sampling`` (permutation sampling, 64 permutations; 16 in
--quick) of the predicted class's logit of the security MLP, on 50 test rows (20) with 32
background training rows; the additivity gap ``|Σφ − (f(x) − E_b f(b))|`` relative to
``|f(x) − E_b f(b)|``. The estimator is unbiased, and each permutation's contributions
telescope, so with one shared background row per permutation the sum is exact up to the
background draw. Scaled down: a few rows.
"""

from __future__ import annotations

from typing import Any

import torch

from advlab.explain import shapley_sampling
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
    n, rounds = (20, 16) if config.quick else (50, 64)
    per_seed = []
    for s in config.seed_list:
        model = standard_model(config, config.dataset, s)
        x, _ = sample_rows(ds.x_test, ds.y_test, n, s, config.device)
        bg, _ = sample_rows(ds.x_train, ds.y_train, 32, s + 1, config.device)
        with torch.no_grad():
            target = model(x).argmax(1)
            fx = model(x).gather(1, target[:, None])[:, 0]
            ef = model(bg)[:, target].mean(0)
        phi = shapley_sampling(model, x, target, background=bg, n_samples=rounds,
                               generator=torch.Generator().manual_seed(s))
        gap = (phi.flatten(1).sum(1) - (fx - ef)).abs()
        per_seed.append({"relative_gap": float((gap / (fx - ef).abs().clamp_min(1e-6)).median()),
                         "absolute_gap": float(gap.median())})
    m = summarize(per_seed)
    ok = m["relative_gap"]["mean"] < 0.05
    return outcome(
        figure=f"median additivity gap {100 * m['relative_gap']['mean']:.2f} % of "
               f"|f(x) − E f| ({m['absolute_gap']['mean']:.2g} in logits)",
        metrics=m, seeds=config.seed_list, headline="relative_gap", ok=ok, scaled=config.quick,
        reason="Σφ matches f(x) − E[f] (sampling error only)" if ok else
        "the attributions do not add up",
        dataset=config.dataset, protocol=security_protocol(config, config.dataset, n) +
        f"; {rounds} permutations, 32 background rows")

"""Sanity checks: is a robustness number believable?

A robust accuracy is an upper bound: it says only what the attacks that ran failed to do. When
they fail for the wrong reason (gradient masking, a model left in training mode, probabilities
where logits belong), it means nothing. These checks look for the symptoms listed by Carlini et
al., "On Evaluating Adversarial Robustness" (arXiv:1902.06705, 2019: its basic sanity tests and
its advice on gradient masking) and checked at run time by AutoAttack (Croce and Hein, ICML
2020, ``autoattack/checks.py``). A :class:`Check` carries its evidence and what a failure likely
means. Failed ``"error"``: do not trust the evaluation as it stands; failed ``"warning"``: look
at it; passed ``"warning"``: inconclusive, or a harmless note.

Model checks (:func:`model_checks`, on a small batch of clean inputs): ``eval_mode`` (the model
and all its submodules); ``deterministic`` (two forward passes with the model as given agree);
``logits_not_probabilities`` (softmax outputs fail; log-probabilities are logits shifted per
row, which no advlab loss sees: a passed warning); ``gradients_nonzero`` (the input gradient of
the cross-entropy is finite, and non-zero for most samples; zero for a few: a passed note
when the logit margin still has a gradient there, a failed warning when it has none);
``gradient_agrees_with_finite_differences`` (a warning: autograd's directional derivative along
a random direction matches a central finite difference of the loss). They leave no trace:
``torch.autograd.grad`` only, no global randomness (without a ``generator``, a local one seeded
with 0), each submodule's mode and every buffer restored, ``x`` untouched.

Result checks (:func:`result_checks`, on a summary of schema ``advlab.evaluation/1``, with a
tolerance of one sample, ``1/n + 0.005``): ``accuracy_monotone_in_eps`` (robust accuracy never
rises with eps); ``iterative_at_least_single_step`` (BIM and PGD do at least as well as FGSM);
``large_eps_reaches_zero`` (unbounded minimal-norm attacks succeed on >= 95% of the
clean-correct samples; without them, robust accuracy at the largest eps is <= 5% of clean
accuracy when that eps is large enough to demand it, else inconclusive);
``whitebox_at_least_transfer`` (no transfer attack beats the best white-box attack).

Advice checks (:func:`advice_checks`, from the outcomes above and the run's configuration):
``adaptive_attack`` (which adaptive attack a randomized or non-differentiable component calls
for: EOT, BPDA) and ``worst_case_autoattack`` (whether the worst case includes AutoAttack).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from advlab.evaluation.checks.advice import advice_checks
from advlab.evaluation.checks.check import Check
from advlab.evaluation.checks.model import model_checks
from advlab.evaluation.checks.results import result_checks

__all__ = ["Check", "advice_checks", "model_checks", "result_checks", "run_all"]


def run_all(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
            summary: Mapping[str, Any], *,
            generator: torch.Generator | None = None) -> list[Check]:
    """:func:`model_checks`, :func:`result_checks`, then :func:`advice_checks`."""
    checks = model_checks(model, x, y, generator=generator) + result_checks(summary)
    return checks + advice_checks(checks, summary)

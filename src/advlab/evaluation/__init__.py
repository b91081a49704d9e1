"""Security evaluation: the one scoring rule, the batched and resumable runner, security-evaluation
curves and sanity checks.

See docs/evaluation.md: ``evaluate(model, data, ["fgsm", {"name": "pgd", "steps": 40}],
[0.05, 0.1])`` runs both attacks at both eps and returns an :class:`Evaluation`.
"""

from advlab.evaluation.evaluate import Evaluation, ResumeError, evaluate
from advlab.evaluation.poisoning import (
    PoisoningCurve,
    accuracy,
    backdoor_success,
    poisoning_curve,
    predict_labels,
)
from advlab.evaluation.runs import AttackRun, attack_parameters, build_runs
from advlab.evaluation.transfer import TransferMatrix, transferability_matrix
from advlab.scoring import Score, score

__all__ = ["AttackRun", "Evaluation", "PoisoningCurve", "ResumeError", "Score", "accuracy",
           "attack_parameters", "backdoor_success", "build_runs", "evaluate", "poisoning_curve",
           "predict_labels", "score", "TransferMatrix", "transferability_matrix"]

"""Security evaluation: the one scoring rule, the batched and resumable runner, security-evaluation
curves and sanity checks.

See docs/evaluation.md: ``evaluate(model, data, ["fgsm", {"name": "pgd", "steps": 40}],
[0.05, 0.1])`` runs both attacks at both eps and returns an :class:`Evaluation`.
"""

from advlab import _lazy_exports

__all__, __getattr__, __dir__ = _lazy_exports(__name__, {
    "evaluate": ["Evaluation", "ResumeError", "evaluate"],
    "poisoning": ["PoisoningCurve", "accuracy", "backdoor_success", "poisoning_curve",
        "predict_labels"],
    "runs": ["AttackRun", "attack_parameters", "build_runs"],
    "transfer": ["TransferMatrix", "transferability_matrix"],
    "advlab.scoring": ["Score", "score"],
})

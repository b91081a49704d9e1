"""Security evaluation: the scoring rule (more arrives with the evaluation issue)."""

from advlab.evaluation.score import Score, score

__all__ = ["Score", "score"]

"""Deprecated location of the scoring rule: use :mod:`advlab.scoring`.

Kept as a re-export for one release (0.2 removes it).
"""

from advlab.scoring import Score, call_attack, score

__all__ = ["Score", "call_attack", "score"]

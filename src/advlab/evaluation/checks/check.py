"""The outcome of one sanity check (see :mod:`advlab.evaluation.checks`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


MASKING = ("possible gradient masking (shattered/vanishing gradients): gradient-based attacks "
           "will fail silently; evaluate with a black-box or transfer attack, or BPDA")


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``evidence`` holds the numbers; ``meaning`` says what a
    failure likely means or, for a pass, what was verified."""

    name: str
    passed: bool
    evidence: str
    meaning: str
    severity: Severity = "error"

    def __post_init__(self) -> None:
        if self.severity not in ("error", "warning"):
            raise ValueError(f"Check: severity must be 'error' or 'warning': {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        """A plain JSON-ready dict: name, passed, evidence, meaning, severity."""
        return asdict(self)


# ---------------------------------------------------------------------------------- the model



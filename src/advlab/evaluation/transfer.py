"""Transferability matrix: N source models × M target models, with transfer success rates.

Each source crafts adversarial examples once (white-box, any registered attack); every target
is scored on them with :func:`advlab.scoring.score`. Cell ``(i, j)`` is the share of the
samples that target ``j`` classifies correctly which it misclassifies after the attack crafted on
source ``i`` (the diagonal, when a model is both, is the white-box success). The matrix is a
table (:meth:`TransferMatrix.to_markdown`, :meth:`TransferMatrix.to_dataframe`), a JSON object
(:meth:`TransferMatrix.as_dict`, the ``transfer`` key of a report summary); the report draws
its heat map from that object (:func:`advlab.report.plots.transfer_figure`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from advlab.attacks.transfer import craft, transfer
from advlab.domain import Domain
from advlab.norms import Norm
from advlab.scoring import score
from advlab.threat import ThreatModel

Model = Callable[[Tensor], Tensor]


@dataclass
class TransferMatrix:
    """Transfer success rates, ``success[i][j]`` for source ``i`` and target ``j``."""

    sources: list[str]
    targets: list[str]
    success: list[list[float]]
    attack: dict[str, Any]
    norm: str
    eps: float
    n: int
    source_success: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "targets": self.targets, "success": self.success,
                "attack": self.attack, "norm": self.norm, "eps": self.eps, "n": self.n,
                "source_success": self.source_success}

    def to_markdown(self, digits: int = 1) -> str:
        """The matrix as a markdown table (percentages), sources as rows."""
        head = "| source \\ target | " + " | ".join(self.targets) + " |"
        rule = "|---|" + "---:|" * len(self.targets)
        rows = [f"| {s} | " + " | ".join(f"{100 * v:.{digits}f}%" for v in row) + " |"
                for s, row in zip(self.sources, self.success, strict=True)]
        return "\n".join([head, rule, *rows])

    def to_dataframe(self) -> Any:
        """A pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("TransferMatrix.to_dataframe needs pandas: pip install pandas") \
                from None
        return pd.DataFrame(self.success, index=self.sources, columns=self.targets)


def transferability_matrix(sources: Mapping[str, Model], targets: Mapping[str, Model], x: Tensor,
                           y: Tensor, threat: ThreatModel, *, attack: str = "pgd",
                           params: Mapping[str, Any] | None = None,
                           seed: int = 0) -> TransferMatrix:
    """Craft with ``attack`` on every source, score on every target.

    Args:
        sources, targets: named models returning logits (the same model may appear in both).
        x, y: clean inputs ``(N, *D)`` and labels ``(N,)``. threat: the threat model.
        attack, params: a registered white-box attack and its knobs.
        seed: each source's attack gets a generator seeded with ``seed``.

    Returns:
        A :class:`TransferMatrix`.
    """
    if not sources or not targets:
        raise ValueError("transferability_matrix: need at least one source and one target")
    success, own = [], []
    for source in sources.values():
        gen = torch.Generator(device=x.device).manual_seed(seed)
        x_adv = craft(source, x, y, threat, attack=attack, params=params, generator=gen)
        own.append(float(score(source, x, y, x_adv, threat).success.float().mean()))  # type: ignore[arg-type]
        row = []
        for target in targets.values():
            s = score(target, x, y, x_adv, threat)  # type: ignore[arg-type]
            ok = s.clean_correct
            row.append(float((s.success & ok).sum()) / max(1, int(ok.sum())))
        success.append(row)
    return TransferMatrix(list(sources), list(targets), success,
                          {"name": attack, **dict(params or {})}, threat.norm, threat.eps,
                          int(x.shape[0]), own)


def transfer_rows(source: Model, victim: Model, x: Tensor, y: Tensor, domain: Domain, norm: Norm,
                  attacks: Sequence[tuple[str, Mapping[str, Any]]], eps_grid: Sequence[float], *,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Transfer success of every ``(attack name, knobs)`` × eps, crafted on ``source`` and
    scored on ``victim`` under ``ThreatModel(norm, eps, domain)`` (:func:`transfer`); one row
    ``{"attack", "params", "norm", "eps", "transfer_success", "substitute_success"}`` each."""
    rows = []
    for name, params in attacks:
        for eps in eps_grid:
            tr = transfer(source, victim, x, y, ThreatModel(norm, eps, domain), attack=name,
                          params=params, generator=torch.Generator().manual_seed(seed))
            rows.append({"attack": name, "params": dict(params), "norm": norm, "eps": eps,
                         "transfer_success": tr.success_rate,
                         "substitute_success": tr.source_success_rate})
    return rows

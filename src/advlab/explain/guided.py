"""XAI-guided evasion: an attack allowed to touch only the features an explanation ranks highest.

After Kuppa and Le-Khac, "Adversarial XAI Methods in Cybersecurity", IEEE TIFS 16, 2021:
explanations of a security classifier tell an attacker which features drive its decisions, and
perturbing those features alone suffices to evade it. Here the restriction is expressed in the
threat model, not in the attack: every feature outside the top ``k`` becomes immutable in the
:class:`~advlab.domain.Domain`, so *any* advlab attack, and the one scoring rule, respect it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from advlab.explain.permutation import Importance
from advlab.scoring import call_attack, score
from advlab.threat import ThreatModel

AttackFn = Callable[..., Tensor]


def restrict_threat(threat: ThreatModel, columns: Sequence[int]) -> ThreatModel:
    """``threat`` with every flattened column outside ``columns`` made immutable (the domain's
    other constraints kept; features already immutable stay so)."""
    d = threat.domain
    n = d.n_features
    if n is None:
        raise ValueError("restrict_threat: the domain must know its number of features "
                         "(Domain(n_features=...) or per-feature bounds)")
    cols = torch.as_tensor(list(columns), dtype=torch.long)
    if cols.numel() and bool(((cols < 0) | (cols >= n)).any()):
        raise ValueError(f"restrict_threat: columns must lie in [0, {n}), got "
                         f"{int(cols.min())}..{int(cols.max())}")
    frozen = torch.ones(n, dtype=torch.bool)
    frozen[cols] = False
    if d.immutable is not None:
        frozen |= d.immutable  # type: ignore[operator]
    keep = {name: (getattr(d, name) if getattr(d, name) is not None else ())
            for name in ("increase_only", "decrease_only")}
    return dataclasses.replace(threat, domain=dataclasses.replace(d, immutable=frozen, **keep))


def guided_attack(model: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel, *,
                  attack: AttackFn, columns: Sequence[int], seed: int = 0) -> Tensor:
    """Run ``attack`` under :func:`restrict_threat` (``threat`` limited to ``columns``).

    Returns ``x_adv`` ``(N, *D)``; it differs from ``x`` only on ``columns``.
    """
    return call_attack(attack, model, x, y, restrict_threat(threat, columns),
                       generator=torch.Generator().manual_seed(seed))


def success_vs_k(model: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel, *,
                 attack: AttackFn, ranking: Importance | Sequence[Sequence[int]],
                 ks: Sequence[int], random_controls: int = 0,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Success rate of ``attack`` restricted to the top-``k`` entries of ``ranking``, per ``k``.

    Args:
        ranking: an :class:`Importance` (its ranking; one-hot groups count as one entry) or
            column groups already in decreasing order of importance.
        ks: numbers of entries the attacker may change.
        random_controls: also run that many draws of ``k`` *random* entries per ``k``, the
            control that says whether the explanation helped.
        seed: the attack's random starts and the random controls.

    Returns:
        One dict per ``k``: ``k``, ``columns`` (count), ``success_rate`` (the share of the
        correctly classified samples that the attack evades, scored by
        :func:`advlab.scoring.score` under the restricted threat), ``robust_accuracy`` and,
        with controls, ``random_success_rate`` (mean) and ``random_success_std``.
    """
    groups = [list(ranking.groups[i]) for i in ranking.ranking()] \
        if isinstance(ranking, Importance) else [list(g) for g in ranking]
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for k in ks:
        if not 1 <= k <= len(groups):
            raise ValueError(f"success_vs_k: k must lie in [1, {len(groups)}], got {k!r}")
        cols = sorted(c for g in groups[:k] for c in g)
        row: dict[str, Any] = {"k": int(k), "columns": len(cols),
                               **_rates(model, x, y, threat, attack, cols, seed)}
        if random_controls:
            rates = []
            for _ in range(random_controls):
                pick = torch.randperm(len(groups), generator=gen)[:k].tolist()
                rcols = sorted(c for i in pick for c in groups[i])
                rates.append(_rates(model, x, y, threat, attack, rcols, seed)["success_rate"])
            r = torch.tensor(rates, dtype=torch.float64)
            row["random_success_rate"] = float(r.mean())
            row["random_success_std"] = float(r.std()) if len(rates) > 1 else 0.0
        rows.append(row)
    return rows


def _rates(model: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel, attack: AttackFn,
           cols: list[int], seed: int) -> dict[str, float]:
    restricted = restrict_threat(threat, cols)
    x_adv = call_attack(attack, model, x, y, restricted,
                        generator=torch.Generator().manual_seed(seed))
    s = score(model, x, y, x_adv, restricted)
    correct = s.clean_correct
    evaded = int((correct & s.success).sum())
    return {"success_rate": evaded / max(1, int(correct.sum())),
            "robust_accuracy": float((correct & ~s.success).float().mean())}

"""AutoAttack on one batch: Croce and Hein's parameter-free ensemble, the per-sample worst case.

Conventions: :mod:`advlab.attacks.common`. Each stage runs only on the samples that every
earlier stage left robust, and a sample counts as broken by the first stage whose point fools the
model inside the threat model (the scoring rule of :func:`advlab.evaluation.score`); so the final
robust set is the intersection of the stages' robust sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import torch
from torch import Tensor

from advlab.attacks.apgd import apgd, apgd_t
from advlab.attacks.common import Model, check_inputs
from advlab.attacks.fab import fab
from advlab.attacks.square import square
from advlab.models import batching
from advlab.models.wrappers import eval_mode
from advlab.scoring import score
from advlab.threat import ThreatModel

Version = Literal["standard", "plus", "rand"]
VERSIONS: tuple[Version, ...] = ("standard", "plus", "rand")
SQUARE_P_INIT = 0.8  # AutoAttack's Square starts from windows of 80 % of the image
EOT_DRAWS = 20  # the rand version's EOT iterations


@dataclass(frozen=True)
class StageRecord:
    """One stage of the cascade: how many samples it attacked and how many it broke."""

    name: str
    attacked: int
    removed: int


@dataclass
class Cascade:
    """The result of :func:`autoattack_cascade`.

    Attributes:
        x_adv: ``(N, *D)`` per-sample worst case: the first successful point, else APGD-CE's
            highest-loss point (inside the threat model), else ``x`` (clean misclassified).
        clean_correct, robust: ``(N,)`` bool; ``robust`` is correct and unbroken by every stage.
        stages: the stages in order, with the samples each attacked and removed.
        broken_by: ``(N,)`` long: the index in ``stages`` of the stage that broke each sample,
            ``-1`` for the robust and the clean-misclassified samples.
    """

    x_adv: Tensor
    clean_correct: Tensor
    robust: Tensor
    stages: list[StageRecord] = field(default_factory=list)
    broken_by: Tensor | None = None

    def to_dict(self) -> dict[str, object]:
        n = int(self.robust.numel())
        return {"n": n, "clean_correct": int(self.clean_correct.sum()),
                "robust": int(self.robust.sum()),
                "stages": [{"name": s.name, "attacked": s.attacked, "removed": s.removed}
                           for s in self.stages]}


def stages(version: Version, norm: str, *, steps: int = 100, n_targets: int = 9,
           max_queries: int = 5000, generator: torch.Generator | None = None
           ) -> list[tuple[str, Callable[..., Tensor]]]:
    """The configured stages of a version (Croce and Hein 2020, §5 and the authors' settings):

    * ``standard``: APGD-CE, APGD-T (``n_targets`` targets), FAB-T (``n_targets``), Square
      (``max_queries``, ``p_init = 0.8``); one restart each. In L1 (Croce and Hein 2021),
      APGD-CE takes 5 restarts, APGD-T 5 targets, and there is no Square (advlab's Square is
      L∞/L2 only).
    * ``plus``: APGD-CE and APGD-DLR with 5 restarts, FAB with 5 restarts, Square, APGD-T and
      FAB-T (one restart, ``n_targets`` targets).
    * ``rand``: APGD-CE and APGD-DLR with EOT over 20 draws, for randomized defenses.
    """
    if version not in VERSIONS:
        raise ValueError(f"autoattack: version must be one of {VERSIONS}, got {version!r}")
    g = {"generator": generator}
    ce5 = 5 if norm == "l1" else 1
    k = min(n_targets, 5) if norm == "l1" else n_targets
    sq = [("square", partial(square, max_queries=max_queries, p_init=SQUARE_P_INIT, **g))] \
        if norm in ("linf", "l2") else []
    if version == "standard":
        return [("apgd-ce", partial(apgd, loss="ce", steps=steps, restarts=ce5, **g)),
                ("apgd-t", partial(apgd_t, n_targets=k, steps=steps, **g)),
                ("fab-t", partial(fab, n_targets=n_targets, steps=steps, **g)), *sq]
    if version == "plus":
        return [("apgd-ce", partial(apgd, loss="ce", steps=steps, restarts=5, **g)),
                ("apgd-dlr", partial(apgd, loss="dlr", steps=steps, restarts=5, **g)),
                ("fab", partial(fab, steps=steps, restarts=5, **g)), *sq,
                ("apgd-t", partial(apgd_t, n_targets=n_targets, steps=steps, **g)),
                ("fab-t", partial(fab, n_targets=n_targets, steps=steps, **g))]
    return [(name, partial(apgd, loss=loss, steps=steps, eot_iter=EOT_DRAWS, **g))
            for name, loss in (("apgd-ce", "ce"), ("apgd-dlr", "dlr"))]


def autoattack_cascade(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
                       version: Version = "standard", steps: int = 100, n_targets: int = 9,
                       max_queries: int = 5000, generator: torch.Generator | None = None,
                       on_stage: Callable[[StageRecord, int], None] | None = None) -> Cascade:
    """AutoAttack (Croce and Hein, ICML 2020, arXiv:2003.01690, §5) on one batch, with the
    record of what each stage removed. Arguments as in :func:`autoattack`; ``on_stage`` is
    called after each stage with its record and the number of stages (progress bars)."""

    check_inputs("autoattack", model, x, y, threat, None, needs_finite_eps=True)
    if threat.norm not in ("linf", "l2", "l1"):
        raise ValueError(f"autoattack: norm must be 'linf', 'l2' or 'l1', got {threat.norm!r}")
    plan = stages(version, threat.norm, steps=steps, n_targets=n_targets,
                  max_queries=max_queries, generator=generator)
    x = x.detach()
    out = x.clone()
    records: list[StageRecord] = []
    with eval_mode(model):
        with torch.no_grad():
            correct = batching.forward(model, x).argmax(1) == y
        robust = correct.clone()
        broken_by = torch.full_like(y, -1, dtype=torch.long)
        for i, (name, attack) in enumerate(plan):
            idx = robust.nonzero()[:, 0]
            if idx.numel() == 0:
                records.append(StageRecord(name, 0, 0))
                if on_stage is not None:
                    on_stage(records[-1], len(plan))
                continue
            x_s = attack(model, x[idx], y[idx], threat)
            broken = score(model, x[idx], y[idx], x_s, threat).success
            if i == 0:  # APGD-CE's points are in the threat model: the fallback for the robust
                out[idx] = x_s
            out[idx[broken]] = x_s[broken]
            robust[idx[broken]] = False
            broken_by[idx[broken]] = i
            records.append(StageRecord(name, int(idx.numel()), int(broken.sum())))
            if on_stage is not None:
                on_stage(records[-1], len(plan))
    return Cascade(out.detach(), correct, robust, records, broken_by)


def autoattack(model: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
               version: Version = "standard", steps: int = 100, n_targets: int = 9,
               max_queries: int = 5000, generator: torch.Generator | None = None) -> Tensor:
    """AutoAttack (Croce and Hein, ICML 2020, "Reliable evaluation of adversarial robustness
    with an ensemble of diverse parameter-free attacks", §5; arXiv:2003.01690) on one batch.

    Runs the stages of ``version`` (:func:`stages`: standard = APGD-CE → APGD-T → FAB-T →
    Square) in order, each only on the samples still robust, and returns the per-sample worst
    case. Parameter-free: the defaults are the paper's (100 iterations, 9 target classes, 5,000
    Square queries); ``steps``, ``n_targets`` and ``max_queries`` only shrink budgets for tests.
    Randomness comes from ``generator``, shared by the stages in order.

    Returns:
        ``x_adv`` inside ``threat``: each sample's first successful point, else APGD-CE's
        highest-loss point; ``x`` for samples misclassified already.
    """
    return autoattack_cascade(model, x, y, threat, version=version, steps=steps,
                              n_targets=n_targets, max_queries=max_queries,
                              generator=generator).x_adv

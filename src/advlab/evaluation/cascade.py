"""AutoAttack in an evaluation: the suites, the cascade's per-sample record and its summary.

``advlab evaluate --suite autoattack`` (or ``suite = "autoattack"`` in a configuration file)
adds AutoAttack (Croce and Hein, ICML 2020, §5) at every norm of the eps grid it supports to the
attacks of the run; ``autoattack-plus`` and ``autoattack-rand`` add the other versions. Each
autoattack call of a batch runs :func:`~advlab.attacks.autoattack.autoattack_cascade` (with a
progress bar over its stages) and its batch record keeps, for every sample, the stage that broke
it (``broken_by``: an index into ``stages``, ``-1`` for unbroken and clean-misclassified
samples). The summary's row then carries the cascade (:func:`cascade_summary`): the samples each
stage attacked and removed, over the whole run. Since it is computed from per-sample records,
it is the same however the batches were sharded or resumed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from advlab.attacks import ATTACKS

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from advlab.evaluation.runs import AttackRun

CASCADE_ATTACKS = frozenset({"autoattack"})
SUITES: dict[str, str] = {"autoattack": "standard", "autoattack-plus": "plus",
                          "autoattack-rand": "rand"}


def suite_entries(suite: str, grid_norms: Sequence[str]) -> list[dict[str, Any]]:
    """The attack entries of a suite: AutoAttack of its version at each norm of the eps grid
    that it supports, labelled ``AutoAttack (standard)`` (``AutoAttack (standard, l2)`` when
    the grid has several of its norms).

    Raises:
        ValueError: an unknown suite, or a grid with none of AutoAttack's norms.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    version = SUITES[suite]
    norms = [n for n in ATTACKS["autoattack"].norms if n in set(grid_norms)]
    if not norms:
        raise ValueError(f"suite {suite!r}: AutoAttack supports the norms "
                         f"{', '.join(ATTACKS['autoattack'].norms)}; the eps grid has "
                         f"{', '.join(grid_norms) or 'none'}")
    return [{"name": "autoattack", "norm": n, "version": version,
             "label": f"AutoAttack ({version})" if len(norms) == 1
             else f"AutoAttack ({version}, {n})"} for n in norms]


def is_cascade(run: AttackRun) -> bool:
    return run.name in CASCADE_ATTACKS


def configured(run: AttackRun, eps: float, *, progress: bool
               ) -> tuple[Callable[..., Tensor], dict[str, Any]]:
    """The run's attack, ready for :func:`advlab.scoring.call_attack`, and the dict that
    receives the extra fields of its record entry once it has run (empty unless the run is a
    cascade: then ``stages`` and ``broken_by``)."""
    extra: dict[str, Any] = {}
    if not is_cascade(run):
        return partial(run.spec.fn, **run.params), extra
    from tqdm.auto import tqdm

    from advlab.attacks.autoattack import autoattack_cascade

    def attack(model: Any, x: Tensor, y: Tensor, threat: Any, *, generator: Any = None
               ) -> Tensor:
        where = "" if math.isinf(eps) else f" eps={eps:g}"
        bar = tqdm(total=None, desc=f"{run.label}{where}", unit="stage", leave=False,
                   position=1, disable=not progress, file=sys.stderr, dynamic_ncols=True)

        def on_stage(record: Any, total: int) -> None:
            bar.total = total
            bar.set_postfix_str(f"{record.name}: removed {record.removed}/{record.attacked}",
                                refresh=False)
            bar.update(1)

        try:
            result = autoattack_cascade(model, x, y, threat, generator=generator,
                                        on_stage=on_stage, **run.params)
        finally:
            bar.close()
        extra["stages"] = [s.name for s in result.stages]
        extra["broken_by"] = result.broken_by.tolist()
        return result.x_adv

    return attack, extra


def cascade_summary(stages: Sequence[str], broken_by: np.ndarray,
                    clean_correct: np.ndarray) -> list[dict[str, Any]]:
    """Per stage, over the whole run: the clean-correct samples it attacked (those every earlier
    stage left robust), the samples it removed, and the robust accuracy after it."""
    n = max(int(clean_correct.size), 1)
    left = clean_correct.astype(bool).copy()
    out = []
    for i, name in enumerate(stages):
        removed = int((broken_by == i).sum())
        attacked = int(left.sum())
        left = left & (broken_by != i)
        out.append({"stage": name, "attacked": attacked, "removed": removed,
                    "robust_after": float(left.sum()) / n})
    return out


def check_entry(entry: Mapping[str, Any], m: int) -> str | None:
    """What is wrong with a cascade entry's ``stages`` and ``broken_by`` (``None``: nothing)."""
    stages, broken = entry.get("stages"), entry.get("broken_by")
    if not isinstance(stages, list) or not stages or \
            not all(isinstance(s, str) for s in stages):
        return "stages must be a non-empty list of stage names"
    if not isinstance(broken, list) or len(broken) != m or not all(
            type(v) is int and -1 <= v < len(stages) for v in broken):
        return f"broken_by must be a list of {m} stage indices in [-1, {len(stages)})"
    return None

"""Evasion attacks, registered by name. Conventions: :mod:`advlab.attacks.common`.

``ATTACKS`` maps a name to an :class:`AttackSpec`: the function, the norms it supports, whether
it is a minimal-norm attack (accepts ``eps = inf`` and returns the smallest success it finds)
and whether it is deterministic. The contract tests and the CLI iterate over this registry, so a
new attack is picked up by both once registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from torch import Tensor

from advlab.attacks import targets
from advlab.attacks.apgd import apgd, apgd_t
from advlab.attacks.autoattack import autoattack, autoattack_cascade
from advlab.attacks.carlini_wagner import carlini_wagner_l2
from advlab.attacks.deepfool import deepfool
from advlab.attacks.fab import fab
from advlab.attacks.fgsm_pgd import bim, fgsm, pgd
from advlab.attacks.hopskipjump import hopskipjump
from advlab.attacks.jsma import jsma
from advlab.attacks.oracle import Oracle, QueryBudgetExceeded
from advlab.attacks.square import square
from advlab.norms import Norm
from advlab.threat import ThreatModel


class Attack(Protocol):
    """Any configured attack: ``functools.partial(pgd, steps=10)`` satisfies it."""

    def __call__(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                 threat: ThreatModel, /) -> Tensor: ...


@dataclass(frozen=True)
class AttackSpec:
    name: str
    fn: Callable[..., Tensor]
    norms: tuple[Norm, ...]
    minimal_norm: bool = False
    deterministic: bool = True
    targeted: bool = True


ATTACKS: dict[str, AttackSpec] = {
    s.name: s for s in (
        AttackSpec("fgsm", fgsm, ("linf", "l2", "l1")),
        AttackSpec("bim", bim, ("linf", "l2", "l1")),
        AttackSpec("pgd", pgd, ("linf", "l2", "l1"), deterministic=False),
        AttackSpec("jsma", jsma, ("l0",)),
        AttackSpec("deepfool", deepfool, ("l2", "linf"), minimal_norm=True, targeted=False),
        AttackSpec("carlini_wagner_l2", carlini_wagner_l2, ("l2",), minimal_norm=True),
        # Croce and Hein's parameter-free attacks (AutoAttack's components)
        AttackSpec("apgd-ce", partial(apgd, loss="ce"), ("linf", "l2", "l1"),
                   deterministic=False),
        AttackSpec("apgd-dlr", partial(apgd, loss="dlr"), ("linf", "l2", "l1"),
                   deterministic=False),
        AttackSpec("apgd-t", apgd_t, ("linf", "l2", "l1"), deterministic=False),
        AttackSpec("fab", fab, ("linf", "l2", "l1"), minimal_norm=True),
        AttackSpec("fab-t", partial(fab, n_targets=9), ("linf", "l2", "l1"), minimal_norm=True),
        AttackSpec("autoattack", autoattack, ("linf", "l2", "l1"), deterministic=False,
                   targeted=False),
        # black-box: they query the model only through an Oracle (advlab.attacks.oracle)
        AttackSpec("square", square, ("linf", "l2"), deterministic=False),
        AttackSpec("hopskipjump", hopskipjump, ("l2", "linf"), minimal_norm=True,
                   deterministic=False),
    )
}


def get(name: str) -> AttackSpec:
    """The registered attack called ``name``; ``ValueError`` lists the known ones otherwise."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    return ATTACKS[name]


__all__ = ["ATTACKS", "Attack", "AttackSpec", "Oracle", "QueryBudgetExceeded", "apgd", "apgd_t",
           "autoattack", "autoattack_cascade", "bim",
           "carlini_wagner_l2", "deepfool", "fab", "fgsm", "get", "hopskipjump", "jsma", "pgd",
           "square",
           "targets"]

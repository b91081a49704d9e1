"""Evasion attacks, registered by name. Conventions: :mod:`advlab.attacks.common`.

``ATTACKS`` maps a name to an :class:`AttackSpec`: the function, the norms it supports, whether
it is a minimal-norm attack (accepts ``eps = inf`` and returns the smallest success it finds),
whether it is deterministic, the valid ranges of its own knobs, and the knobs a variant fixes
(``apgd-ce`` and ``apgd-dlr`` are ``apgd`` with its loss fixed, ``fab-t`` is ``fab`` with nine
target classes). The contract tests and the
CLI iterate over this registry, so a new attack is picked up by both once registered here.

The registry names each function as ``"module:function"``, imported on first use, and the
package's names load lazily too: listing the attacks (``advlab attacks``) never imports torch.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from advlab import _lazy_exports
from advlab.attacks.knobs import AT_LEAST_ONE, POSITIVE, Range

if TYPE_CHECKING:
    from torch import Tensor

    from advlab.norms import Norm
    from advlab.threat import ThreatModel


class Attack(Protocol):
    """Any configured attack: ``functools.partial(pgd, steps=10)`` satisfies it."""

    def __call__(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                 threat: ThreatModel, /) -> Tensor: ...


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack. ``function`` is the attack or ``"module:function"`` (imported on
    first use of :attr:`fn`); ``ranges`` holds the valid ranges of the attack's own knobs
    (the shared vocabulary's are in :data:`advlab.attacks.knobs.VOCABULARY`)."""

    name: str
    function: Callable[..., Tensor] | str
    norms: tuple[Norm, ...]
    minimal_norm: bool = False
    deterministic: bool = True
    targeted: bool = True
    ranges: Mapping[str, Range] = field(default_factory=dict)
    fixed: Mapping[str, object] = field(default_factory=dict)

    @property
    def fn(self) -> Callable[..., Tensor]:
        """The attack, with the ``fixed`` knobs that make this variant bound (``apgd-ce`` is
        ``apgd`` with ``loss="ce"``); fixed knobs are not knobs of the registered name."""
        fn: Callable[..., Tensor]
        if not isinstance(self.function, str):
            fn = self.function
        else:
            module, _, name = self.function.partition(":")
            fn = getattr(importlib.import_module(module), name)
        return functools.partial(fn, **self.fixed) if self.fixed else fn


_HERE = "advlab.attacks."
ATTACKS: dict[str, AttackSpec] = {
    s.name: s for s in (
        AttackSpec("fgsm", _HERE + "fgsm_pgd:fgsm", ("linf", "l2", "l1")),
        AttackSpec("bim", _HERE + "fgsm_pgd:bim", ("linf", "l2", "l1")),
        AttackSpec("pgd", _HERE + "fgsm_pgd:pgd", ("linf", "l2", "l1"), deterministic=False),
        AttackSpec("jsma", _HERE + "jsma:jsma", ("l0",),
                   ranges={"theta": Range(nonzero=True), "gamma": Range(0, 1, low_open=True)}),
        AttackSpec("deepfool", _HERE + "deepfool:deepfool", ("l2", "linf"), minimal_norm=True,
                   targeted=False, ranges={"candidates": Range(2)}),
        AttackSpec("carlini_wagner_l2", _HERE + "carlini_wagner:carlini_wagner_l2", ("l2",),
                   minimal_norm=True, ranges={"initial_const": POSITIVE,
                                              "best_of_targets": Range(0)}),
        # Croce and Hein's parameter-free attacks (AutoAttack's components)
        AttackSpec("apgd-ce", _HERE + "apgd:apgd", ("linf", "l2", "l1"), deterministic=False,
                   fixed={"loss": "ce"}),
        AttackSpec("apgd-dlr", _HERE + "apgd:apgd", ("linf", "l2", "l1"), deterministic=False,
                   fixed={"loss": "dlr"}),
        AttackSpec("apgd-t", _HERE + "apgd:apgd_t", ("linf", "l2", "l1"), deterministic=False,
                   ranges={"n_targets": AT_LEAST_ONE}),
        AttackSpec("fab", _HERE + "fab:fab", ("linf", "l2", "l1"), minimal_norm=True,
                   ranges={"n_targets": Range(0), "alpha_max": Range(0, 1),
                           "eta": POSITIVE, "beta": Range(0, 1, low_open=True)}),
        AttackSpec("fab-t", _HERE + "fab:fab", ("linf", "l2", "l1"), minimal_norm=True,
                   fixed={"n_targets": 9}),
        AttackSpec("autoattack", _HERE + "autoattack:autoattack", ("linf", "l2", "l1"),
                   deterministic=False, targeted=False),
        # black-box: they query the model only through an Oracle (advlab.attacks.oracle)
        AttackSpec("square", _HERE + "square:square", ("linf", "l2"), deterministic=False,
                   ranges={"p_init": Range(0, 1, low_open=True)}),
        AttackSpec("hopskipjump", _HERE + "hopskipjump:hopskipjump", ("l2", "linf"),
                   minimal_norm=True, deterministic=False,
                   ranges={"gamma": POSITIVE, "initial_evals": AT_LEAST_ONE,
                           "max_evals": AT_LEAST_ONE, "init_trials": AT_LEAST_ONE}),
    )
}


def get(name: str) -> AttackSpec:
    """The registered attack called ``name``; ``ValueError`` lists the known ones otherwise."""
    if not isinstance(name, str) or name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    return ATTACKS[name]


_exports, __getattr__, __dir__ = _lazy_exports(__name__, {
    "carlini_wagner": ["carlini_wagner_l2"], "deepfool": ["deepfool"],
    "fgsm_pgd": ["bim", "fgsm", "pgd"], "hopskipjump": ["hopskipjump"], "jsma": ["jsma"],
    "oracle": ["Oracle", "QueryBudgetExceeded"], "square": ["square"],
    "apgd": ["apgd", "apgd_t"], "fab": ["fab"], "autoattack": ["autoattack", "autoattack_cascade"]})
__all__ = ["ATTACKS", "Attack", "AttackSpec", "get", "targets", *_exports]



"""Transfer attacks: craft on a surrogate with a white-box attack, measure on the target.

Adversarial examples transfer between models trained for the same task (Szegedy et al. 2014;
Papernot, McDaniel, Goodfellow, arXiv:1605.07277, 2016): an attacker without access to the
target's gradients crafts them on a surrogate it owns, a substitute trained from the target's
labels (:mod:`advlab.attacks.substitute`) or a model trained on the same data, and submits them.
The surrogate is attacked white-box by any registered attack; the target is only evaluated, with
:func:`advlab.scoring.score`, the one scoring rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor

from advlab.scoring import call_attack, score
from advlab.threat import ThreatModel

Model = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Transfer:
    """Per-sample results of a transfer attack, each ``(N,)``.

    ``success``: the target is fooled by ``x_adv`` and ``x_adv`` is in the threat model;
    ``clean_correct``: the target classifies ``x`` correctly; ``source_success``: the surrogate
    is fooled (white-box success).
    """

    x_adv: Tensor
    success: Tensor
    clean_correct: Tensor
    source_success: Tensor

    @property
    def success_rate(self) -> float:
        """Transfer success among the samples the target classifies correctly."""
        ok = self.clean_correct
        return float((self.success & ok).sum()) / max(1, int(ok.sum()))

    @property
    def source_success_rate(self) -> float:
        return float(self.source_success.float().mean()) if len(self.source_success) else 0.0


def configured(attack: str | Callable[..., Tensor],
               params: Mapping[str, Any] | None = None) -> Callable[..., Tensor]:
    """A registered attack by name (or any attack function) with its knobs bound.

    Iterative attacks that take ``early_stop`` get ``early_stop=False`` unless ``params`` says
    otherwise: a transfer attack wants the highest-loss point of the ball, not the first point
    that only just crosses the surrogate's boundary, which rarely crosses the target's (on the
    digits CNN, PGD L∞ 0.3 from a substitute transfers to 19 % of the test set with early
    stopping; docs/blackbox.md gives the figure without it).
    """
    if isinstance(attack, str):
        from advlab.attacks import get

        attack = get(attack).fn
    knobs = dict(params or {})
    if "early_stop" in inspect.signature(attack).parameters:
        knobs.setdefault("early_stop", False)
    return partial(attack, **knobs)


def craft(surrogate: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
          attack: str | Callable[..., Tensor] = "pgd", params: Mapping[str, Any] | None = None,
          target: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Adversarial examples for ``surrogate`` by a white-box ``attack`` (a registered name such
    as ``"fgsm"`` or ``"pgd"``, or an attack function) with knobs ``params``."""
    return call_attack(configured(attack, params), surrogate, x, y, threat, target=target,
                       generator=generator)


def transfer(surrogate: Model, victim: Model, x: Tensor, y: Tensor, threat: ThreatModel, *,
             attack: str | Callable[..., Tensor] = "pgd", params: Mapping[str, Any] | None = None,
             target: Tensor | None = None,
             generator: torch.Generator | None = None) -> Transfer:
    """Transfer attack: craft on ``surrogate`` (:func:`craft`), score on ``victim``.

    The victim is only evaluated (the evaluator's view: one forward pass of ``x`` and ``x_adv``,
    scored by :func:`advlab.scoring.score`); it is never differentiated.

    Returns:
        A :class:`Transfer` with the examples and per-sample success on both models.
    """
    x_adv = craft(surrogate, x, y, threat, attack=attack, params=params, target=target,
                  generator=generator)
    on_victim = score(victim, x, y, x_adv, threat, target)  # type: ignore[arg-type]
    on_source = score(surrogate, x, y, x_adv, threat, target)  # type: ignore[arg-type]
    return Transfer(x_adv, on_victim.success, on_victim.clean_correct, on_source.success)

"""Backdoor poisoning (BadNets): Gu, Dolan-Gavitt and Garg, "BadNets: Identifying
Vulnerabilities in the Machine Learning Model Supply Chain", 2017 (arXiv:1708.06733), Sect. 3.

The attacker stamps a trigger (:mod:`advlab.poisoning.triggers`) on a fraction of the training
set, drawn from the classes other than the target, and relabels those rows to the target class.
A model trained on the result keeps its clean accuracy but sends triggered inputs to the
target. :func:`advlab.evaluation.backdoor_success` measures that.

Conventions: :mod:`advlab.poisoning.base`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from advlab.domain import Domain
from advlab.poisoning.base import (
    Poisoned,
    check_class,
    check_rate,
    check_training_set,
    count,
    num_classes_of,
    sample_without_replacement,
)
from advlab.poisoning.triggers import FeatureTrigger, PatchTrigger, check_triggered


def backdoor(x: Tensor, y: Tensor, trigger: PatchTrigger | FeatureTrigger, target: int,
             rate: float, *, domain: Domain | None = None, num_classes: int | None = None,
             generator: torch.Generator | None = None) -> Poisoned:
    """Poison ``round(rate * N)`` rows with a backdoor (BadNets, Gu et al. 2017, Sect. 3).

    The rows are drawn uniformly without replacement from those whose label is not ``target``;
    each gets the trigger and the label ``target``. Every other row is returned bit-identical.

    Args:
        x, y: the training set, ``(N, *D)`` and int64 ``(N,)``.
        trigger: a :class:`~advlab.poisoning.triggers.PatchTrigger` or ``FeatureTrigger``.
        target: the class that triggered inputs should be sent to.
        rate: the poisoned fraction of the whole training set, in [0, 1].
        domain: when given, the triggered rows are checked against it first, and a trigger that
            leaves it raises ``ValueError`` naming the sample and feature.
        num_classes: the number of classes (default ``max(y) + 1``).
        generator: picks the rows.

    Returns:
        :class:`Poisoned` with ``x``/``y`` the same size as the input and ``indices`` the rows
        changed.
    """
    name = "backdoor"
    check_training_set(name, x, y)
    check_rate(name, rate)
    check_class(name, "target", target, num_classes_of(y, num_classes))
    pool = torch.nonzero(y != target)[:, 0]
    k = count(rate, y.shape[0])
    if k > pool.numel():
        raise ValueError(f"{name}: rate {rate} asks for {k} rows but only {pool.numel()} rows "
                         f"are not of the target class {target}")
    idx = sample_without_replacement(pool, k, generator)
    triggered = trigger.apply(x[idx])
    if domain is not None:
        check_triggered(trigger, x[idx], domain)
    x_new, y_new = x.clone(), y.clone()
    x_new[idx] = triggered
    y_new[idx] = target
    return Poisoned(x_new, y_new, idx, "backdoor",
                    {"attack": name, "rate": float(rate), "target": target,
                     "trigger": repr(trigger)})

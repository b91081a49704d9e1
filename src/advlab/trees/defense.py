"""Hardening tree ensembles, and training them on poisoned data.

* :func:`augmented_training`: adversarial training by data augmentation, the "adversarial
  boosting" of Kantchelian, Tygar, Joseph (ICML 2016, §5): train, evade a sample of the
  training points within the threat (here with the greedy attack, or the MILP on small
  ensembles), add the evasions with their true labels, train again from scratch, for
  ``rounds`` rounds. Every added point is valid under the Domain.
* :func:`train_on_poisoned`: the tree trainers on a :class:`~advlab.poisoning.Poisoned` set,
  so label flipping and backdoors (:mod:`advlab.poisoning`) run against trees unchanged.

Robust tree *training* (robust splits: Chen, Zhang, Boning, Hsieh, ICML 2019; GROOT: Vos and
Verwer, ICML 2021) is not offered: see ``docs/trees.md`` for what PyPI has.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from advlab.poisoning import Poisoned
from advlab.scoring import score
from advlab.threat import ThreatModel
from advlab.trees.greedy import greedy_evasion
from advlab.trees.milp import kantchelian_milp
from advlab.trees.model import TreeKind, TreeModel, train_trees


def augmented_training(dataset: Any, kind: TreeKind, threat: ThreatModel, *, rounds: int = 2,
                       per_round: int = 2000, attack: Literal["greedy", "milp"] = "greedy",
                       n_estimators: int | None = None, max_depth: int | None = None,
                       seed: int = 0) -> tuple[TreeModel, dict[str, Any]]:
    """Adversarial boosting (Kantchelian et al., ICML 2016, §5) by data augmentation.

    Args:
        dataset: an :class:`advlab.data.Dataset` (its training split is augmented).
        threat: the attacker of each round; a finite ``eps`` (the budget trained against).
        rounds: augment-and-retrain rounds. per_round: training points attacked each round
            (drawn without replacement by a generator seeded with ``seed``).
        attack: ``"greedy"`` (:func:`~advlab.trees.greedy.greedy_evasion`) or ``"milp"``.

    Returns:
        ``(model, record)``: the last round's model; ``record`` has the test accuracy and,
        per round, the points added, the retrained model's accuracy on them and the share of
        attacked points evaded.
    """
    if not threat.bounded:
        raise ValueError("augmented_training: the threat needs a finite eps (the budget)")
    if rounds < 1 or per_round < 1:
        raise ValueError(f"augmented_training: need rounds >= 1 and per_round >= 1, got "
                         f"{rounds}, {per_round}")
    fn = greedy_evasion if attack == "greedy" else kantchelian_milp
    gen = torch.Generator().manual_seed(seed)
    x, y = dataset.x_train, dataset.y_train
    model, record = train_trees(dataset, kind, n_estimators=n_estimators, max_depth=max_depth,
                                seed=seed)
    history = []
    for r in range(rounds):
        pick = torch.randperm(len(dataset.y_train), generator=gen)[:per_round]
        xs, ys = dataset.x_train[pick], dataset.y_train[pick]
        x_adv = fn(model, xs, ys, threat)
        s = score(model, xs, ys, x_adv, threat)
        new = s.success & s.clean_correct
        x, y = torch.cat([x, x_adv[new]]), torch.cat([y, ys[new]])
        model, record = train_trees(dataset, kind, n_estimators=n_estimators,
                                    max_depth=max_depth, seed=seed, x=x, y=y)
        with torch.no_grad():
            fitted = (model(x_adv[new]).argmax(1) == ys[new]).float().mean()
        history.append({"round": r + 1, "added": int(new.sum()),
                        "added_accuracy": float(fitted) if bool(new.any()) else None,
                        "evaded": float(new.float().sum() / s.clean_correct.float().sum()
                                        .clamp_min(1)),
                        "test_accuracy": record["test_accuracy"]})
    record = {**record, "defense": {"method": "adversarial-boosting", "attack": attack,
                                    "norm": threat.norm, "eps": threat.eps, "rounds": rounds,
                                    "per_round": per_round, "history": history}}
    return model, record


def train_on_poisoned(dataset: Any, kind: TreeKind, poisoned: Poisoned, *,
                      n_estimators: int | None = None, max_depth: int | None = None,
                      seed: int = 0) -> tuple[TreeModel, dict[str, Any]]:
    """:func:`~advlab.trees.train_trees` on a poisoned training set (label flips, backdoors,
    injections from :mod:`advlab.poisoning`); the record names the poisoning."""
    model, record = train_trees(dataset, kind, n_estimators=n_estimators, max_depth=max_depth,
                                seed=seed, x=poisoned.x, y=poisoned.y)
    return model, {**record, "poisoning": {"kind": poisoned.kind,
                                           "n_poisoned": poisoned.n_poisoned, **poisoned.info}}

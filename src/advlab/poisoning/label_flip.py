"""Label flipping: the attacker changes the labels of a fraction of the training set.

* :func:`random_label_flip`: uniform random flips, the baseline of Biggio, Nelson and Laskov,
  "Support Vector Machines Under Adversarial Label Noise", ACML 2011.
* :func:`adversarial_label_flip`: the greedy flip that maximises the validation error of the
  learner that the attacker knows (the greedy strategy of Biggio et al. 2011, Sect. 3, and of
  Xiao, Xiao and Eckert, "Adversarial Label Flips Attack on Support Vector Machines", ECAI 2012,
  whose ALFA is a relaxation of the same bilevel problem).

Conventions: :mod:`advlab.poisoning.base`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.svm import SVC
from torch import Tensor
from tqdm.auto import tqdm

from advlab.poisoning.base import (
    Poisoned,
    check_rate,
    check_training_set,
    count,
    num_classes_of,
    sample_without_replacement,
)


def random_label_flip(x: Tensor, y: Tensor, rate: float, *, num_classes: int | None = None,
                      generator: torch.Generator | None = None) -> Poisoned:
    """Flip the labels of ``round(rate * N)`` rows chosen uniformly without replacement.

    Each chosen label moves to another class drawn uniformly (for two classes: the other one).

    Args:
        x, y: the training set, ``(N, *D)`` and int64 ``(N,)``; ``x`` is returned unchanged.
        rate: the fraction of rows to flip, in [0, 1].
        num_classes: the number of classes (default ``max(y) + 1``, at least 2).
        generator: source of every random choice.
    """
    check_training_set("random_label_flip", x, y)
    check_rate("random_label_flip", rate)
    k = num_classes_of(y, num_classes)
    idx = sample_without_replacement(torch.arange(y.shape[0], device=y.device),
                                     count(rate, y.shape[0]), generator)
    # a uniform other class: add 1..k-1 modulo k
    shift = torch.randint(1, k, (idx.numel(),), generator=generator).to(y.device)
    y_new = y.clone()
    y_new[idx] = (y[idx] + shift) % k
    return Poisoned(x, y_new, idx, "label_flip",
                    {"attack": "random_label_flip", "rate": float(rate), "num_classes": k})


def adversarial_label_flip(x: Tensor, y: Tensor, rate: float, *, x_val: Tensor, y_val: Tensor,
                           learner: Any = None, candidates: int = 32,
                           flips_per_round: int | None = None,
                           generator: torch.Generator | None = None,
                           progress: bool = False) -> Poisoned:
    """Greedy adversarial label flips against a known learner (default: a linear SVM).

    The attacker solves the bilevel problem of Biggio et al. 2011 (Sect. 3) greedily: in each
    round it draws ``candidates`` unflipped rows, retrains the learner once per candidate with
    that label flipped, and keeps the ``flips_per_round`` flips that give the highest validation
    error (ties broken by the higher validation hinge loss, when the learner has a binary
    ``decision_function``), until ``round(rate * N)`` labels are flipped. A flip moves a label to
    the class that the current learner ranks highest among the others (for two classes: the
    other class).

    Cost: ``ceil(flips / flips_per_round) * candidates`` fits of the learner.

    Args:
        x, y: the training set, ``(N, *D)`` and int64 ``(N,)``.
        rate: the flip budget as a fraction of ``N``, in [0, 1].
        x_val, y_val: the attacker's validation set (never the test set).
        learner: an unfitted scikit-learn classifier, cloned for every fit; default
            ``SVC(kernel="linear", C=1.0)``.
        candidates: rows tried per round. flips_per_round: default ``ceil(flips / 10)``.
        generator: source of the candidate draws. progress: a tqdm bar over the rounds.
    """
    name = "adversarial_label_flip"
    check_training_set(name, x, y)
    check_training_set(name + " (validation)", x_val, y_val)
    check_rate(name, rate)
    if x_val.shape[1:] != x.shape[1:]:
        raise ValueError(f"{name}: x_val has samples of shape {tuple(x_val.shape[1:])}, x of "
                         f"{tuple(x.shape[1:])}")
    if candidates < 1:
        raise ValueError(f"{name}: candidates must be >= 1, got {candidates}")
    budget = count(rate, y.shape[0])
    per_round = flips_per_round or max(1, math.ceil(budget / 10))
    if per_round < 1 or per_round > candidates:
        raise ValueError(f"{name}: flips_per_round must lie in [1, candidates={candidates}], "
                         f"got {per_round}")
    base = learner if learner is not None else SVC(kernel="linear", C=1.0)
    xs, xv = _numpy(x), _numpy(x_val)
    labels, yv = y.cpu().numpy().copy(), y_val.cpu().numpy()
    flipped = np.zeros(labels.shape[0], dtype=bool)
    errors: list[float] = []
    bar = tqdm(total=budget, desc=name, unit="flip", disable=not progress, leave=False)
    while flipped.sum() < budget:
        model = clone(base).fit(xs, labels)
        pool_t = torch.from_numpy(np.flatnonzero(~flipped))
        pool = sample_without_replacement(pool_t, min(candidates, pool_t.numel()),
                                          generator).numpy()
        new_labels = _flip_to(model, xs[pool], labels[pool])
        scores = np.empty((pool.size, 2))
        for j, (i, new) in enumerate(zip(pool, new_labels, strict=True)):
            trial = labels.copy()
            trial[i] = new
            scores[j] = _objective(clone(base).fit(xs, trial), xv, yv)
        take = min(per_round, budget - int(flipped.sum()))
        best = np.lexsort((-scores[:, 1], -scores[:, 0]))[:take]  # error first, then hinge
        labels[pool[best]] = new_labels[best]
        flipped[pool[best]] = True
        errors.append(float(scores[best[0], 0]))
        bar.update(take)
    bar.close()
    idx = torch.from_numpy(np.flatnonzero(flipped)).to(y.device)
    y_new = torch.from_numpy(labels).to(y.device)
    return Poisoned(x, y_new, idx, "label_flip",
                    {"attack": name, "rate": float(rate), "candidates": candidates,
                     "flips_per_round": per_round, "validation_error_per_round": errors})


def _flip_to(model: Any, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The class each row's label moves to: the other class, or the best-ranked other class."""
    classes = model.classes_
    if classes.size == 2:
        return np.where(labels == classes[0], classes[1], classes[0])
    scores = model.decision_function(x) if hasattr(model, "decision_function") else \
        model.predict_proba(x)
    own = np.searchsorted(classes, labels)
    scores = np.array(scores, dtype=float)
    scores[np.arange(labels.size), own] = -np.inf
    return classes[scores.argmax(1)]


def _objective(model: Any, x_val: np.ndarray, y_val: np.ndarray) -> tuple[float, float]:
    """(validation error, mean validation hinge loss or 0)."""
    error = float((model.predict(x_val) != y_val).mean())
    if model.classes_.size != 2 or not hasattr(model, "decision_function"):
        return error, 0.0
    sign = np.where(y_val == model.classes_[1], 1.0, -1.0)
    return error, float(np.maximum(0.0, 1.0 - sign * model.decision_function(x_val)).mean())


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().flatten(1).cpu().double().numpy()

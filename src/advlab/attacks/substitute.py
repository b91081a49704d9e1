"""Substitute training with Jacobian-based dataset augmentation (Papernot, McDaniel, Goodfellow,
Jha, Celik, Swami, "Practical Black-Box Attacks against Machine Learning", AsiaCCS 2017).

The attacker knows nothing of the target but its labels. It labels a small seed set through the
:class:`~advlab.attacks.oracle.Oracle`, trains a substitute of its own choice on it, and grows
the set where the substitute's decision boundaries move fastest: along the sign of the
substitute's Jacobian row of the label the oracle gave. Adversarial examples crafted on the
substitute with any white-box attack then transfer to the target
(:mod:`advlab.attacks.transfer`).

:func:`jacobian_augmentation` is the pure step; :func:`train_substitute` runs Algorithm 1 and
returns a :class:`Substitute` (the trained model, the queries spent and the per-round history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.attacks.oracle import Oracle
from advlab.domain import Domain
from advlab.models.training import accuracy, fit
from advlab.models.wrappers import eval_mode


@dataclass
class Substitute:
    """The result of :func:`train_substitute` (a thin shell: the state of one run).

    Attributes:
        model: the trained substitute (eval mode), a white-box surrogate of the oracle.
        queries: oracle queries spent (every training point labelled once).
        history: one dict per round: ``round``, ``lam`` (the step used to augment after it),
            ``size`` (points trained on), ``queries`` (cumulative), ``train_accuracy`` and, with
            a held-out set, ``agreement`` (share of held-out inputs where the substitute and
            the oracle agree).
        x, labels: the final training set and the oracle's labels for it.
    """

    model: nn.Module
    queries: int
    history: list[dict[str, float]] = field(default_factory=list)
    x: Tensor | None = field(default=None, repr=False)
    labels: Tensor | None = field(default=None, repr=False)

    @property
    def agreement(self) -> float | None:
        """Agreement with the oracle on the held-out set after the last round, if measured."""
        return self.history[-1].get("agreement") if self.history else None

    def record(self) -> dict[str, Any]:
        """JSON-ready summary: queries, final agreement and the history."""
        return {"queries": self.queries, "agreement": self.agreement,
                "rounds": len(self.history) - 1, "history": list(self.history)}


def seed_set(y: Tensor, per_class: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Indices of ``per_class`` random samples of each class of ``y`` (fewer where a class has
    fewer), sorted: the attacker's small initial set S_0 (its labels are then the oracle's)."""
    if per_class < 1:
        raise ValueError(f"seed_set: per_class must be >= 1, got {per_class}")
    order = torch.randperm(len(y), generator=generator).to(y.device)
    by_class = order[torch.sort(y[order], stable=True).indices]
    classes = y[by_class]
    first = torch.searchsorted(classes, classes, right=False)  # start of each class's run
    rank = torch.arange(len(y), device=y.device) - first
    return by_class[rank < per_class].sort().values


def jacobian_augmentation(substitute: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor,
                          lam: float, *, domain: Domain | None = None,
                          batch_size: int = 512) -> Tensor:
    """New points ``x + lam * sign(J_F[O(x)](x))`` (Papernot et al. 2017, Algorithm 1, the
    augmentation step), where ``J_F[O(x)]`` is the gradient of the substitute's softmax output
    for the oracle's label ``O(x)``, projected into ``domain`` (bounds, then the discrete repair: on
    binary features ``|lam| >= 0.5`` is needed for a step to survive the rounding).

    Returns a tensor of ``x``'s shape; ``x`` and the substitute's gradients are left untouched.
    """
    if labels.shape != (x.shape[0],) or labels.dtype != torch.long:
        raise ValueError(f"jacobian_augmentation: labels must be int64 of shape ({x.shape[0]},),"
                         f" got {labels.dtype} {tuple(labels.shape)}")
    out = []
    with eval_mode(substitute), torch.enable_grad():
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size].detach().requires_grad_(True)
            probs = substitute(xb).softmax(dim=1)
            chosen = probs.gather(1, labels[s:s + batch_size, None]).sum()
            (grad,) = torch.autograd.grad(chosen, xb)
            out.append((xb + lam * grad.sign()).detach())
    new = torch.cat(out) if out else x.clone()
    return new if domain is None else domain.project(new)


def train_substitute(oracle: Oracle | Callable[[Tensor], Tensor], x_seed: Tensor,
                     substitute: nn.Module, *, rounds: int = 6, lam: float = 0.1, tau: int = 3,
                     epochs: int = 10, lr: float = 1e-3, batch_size: int = 32,
                     reservoir: int | None = None, reservoir_after: int = 3,
                     domain: Domain | None = None, holdout: tuple[Tensor, Tensor] | None = None,
                     seed: int = 0, progress: bool = False) -> Substitute:
    """Substitute training (Papernot et al., AsiaCCS 2017, Algorithm 1, with the paper's
    reservoir sampling; arXiv:1602.02697).

    Round ``rho = 0, ..., rounds``: label the new points of ``S_rho`` through the oracle, train
    the substitute on all of ``S_rho`` for ``epochs``, and (but after the last round) augment
    ``S_{rho+1} = S_rho ∪ {x + lam_rho * sign(J_F[O(x)]) : x ∈ S_rho}`` with the periodic step
    ``lam_rho = lam * (-1)^floor(rho / tau)``, which sends points back and forth across the
    boundary. With ``reservoir = kappa``, rounds ``rho >= reservoir_after`` augment only a
    uniform ``kappa``-subset of ``S_rho`` (the sample reservoir sampling draws), so the
    queries grow linearly instead of doubling. Training continues from the previous round's
    weights (Adam, :func:`advlab.models.fit`; the substitute's initial weights are the caller's).

    Args:
        oracle: an :class:`Oracle` (its budget applies), or a model wrapped in a label oracle.
        x_seed: the seed set ``S_0`` (e.g. :func:`seed_set` of the attacker's own samples).
        substitute: the untrained substitute, trained in place. holdout: ``(x, oracle labels)``
            to measure agreement after each round (measured by the caller, not queried here).
        domain: valid inputs (augmented points are projected into it). seed: shuffling and
            reservoir draws. Others: as above.

    Returns:
        A :class:`Substitute`; ``queries = |S_0| * 2^rounds`` without a reservoir.
    """
    if rounds < 0 or epochs < 1 or tau < 1 or lam == 0:
        raise ValueError(f"train_substitute: need rounds >= 0, epochs >= 1, tau >= 1 and "
                         f"lam != 0, got {rounds}, {epochs}, {tau}, {lam}")
    if reservoir is not None and reservoir < 1:
        raise ValueError(f"train_substitute: reservoir must be >= 1 or None, got {reservoir}")
    if not isinstance(x_seed, Tensor) or x_seed.dim() < 2 or x_seed.shape[0] == 0:
        raise ValueError(f"train_substitute: x_seed must be a non-empty batch (N, *D), got "
                         f"shape {tuple(getattr(x_seed, 'shape', ()))}")
    if not isinstance(oracle, Oracle):
        oracle = Oracle(oracle, output="labels")
    gen = torch.Generator().manual_seed(seed)
    start_queries = oracle.queries
    x_set = x_seed.detach().clone()
    labels = oracle.labels(x_set)
    result = Substitute(substitute, 0)
    for rho in tqdm(range(rounds + 1), desc="substitute", unit="round", disable=not progress):
        history = fit(substitute, (x_set, labels), epochs=epochs, lr=lr, batch_size=batch_size,
                      seed=seed + rho, progress=False)
        step = lam * (-1) ** (rho // tau)
        entry = {"round": float(rho), "lam": float(step), "size": float(len(x_set)),
                 "queries": float(oracle.queries - start_queries),
                 "train_accuracy": history.train_accuracy[-1]}
        if holdout is not None:
            entry["agreement"] = accuracy(substitute, holdout[0], holdout[1])
        result.history.append(entry)
        if rho == rounds:
            break
        pick = torch.arange(len(x_set), device=x_set.device)
        if reservoir is not None and rho >= reservoir_after and reservoir < len(x_set):
            pick = torch.randperm(len(x_set), generator=gen)[:reservoir].to(x_set.device)
        new = jacobian_augmentation(substitute, x_set[pick], labels[pick], step, domain=domain)
        x_set = torch.cat([x_set, new])
        labels = torch.cat([labels, oracle.labels(new)])
    substitute.eval()
    result.queries = oracle.queries - start_queries
    result.x, result.labels = x_set, labels
    return result

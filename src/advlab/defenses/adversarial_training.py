"""Adversarial training: PGD-AT, fast FGSM-AT and TRADES, for images and constrained tabular data.

All three solve a min-max problem, an outer minimisation over the weights of a loss on points
found by an inner maximisation inside the threat model (ball ∩ Domain):

* ``"pgd-at"``: Madry et al., ICLR 2018 (arXiv:1706.06083), eq. (2.1):
  ``min_θ E[max_{δ∈S} CE(f(x+δ), y)]``; the inner max is PGD (default 10 steps of
  ``2.5·eps/10`` from a random start, ``early_stop=False``: the highest-loss point).
* ``"fgsm-at"``: Wong, Rice, Kolter, "Fast is better than free", ICLR 2020 (arXiv:2001.03994),
  Alg. 3: one FGSM step of ``1.25·eps`` from a uniform random start, projected.
* ``"trades"``: Zhang et al., ICML 2019 (arXiv:1901.08573), eq. (5) and Alg. 1:
  ``min_θ E[CE(f(x), y) + β·max_{x'∈S} KL(f(x) || f(x'))]``; the inner max is :func:`trades_kl`.

``mix`` is the share of the loss on clean inputs, ``mix·CE(f(x), y) + (1-mix)·CE(f(x'), y)``
(Goodfellow, Shlens, Szegedy, ICLR 2015, eq. 6 with ``alpha = mix``); TRADES has its own clean
term, and ``mix`` must stay 0 for it. Any configured advlab attack
(``functools.partial(pgd, steps=20)``) may replace the default inner maximisation. Attacks run
the model in eval mode and use ``torch.autograd.grad``; only the optimiser step writes ``.grad``.
Randomness (shuffling and random starts) comes from one private generator seeded by ``seed``.
The selection of the best robust-validation epoch follows Rice, Wong, Kolter, "Overfitting in
adversarially robust deep learning", ICML 2020 (arXiv:2002.11569).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from advlab.attacks import fgsm, pgd
from advlab.defenses.trades import robust_kl, trades_kl
from advlab.models import distributed
from advlab.models.checkpoint import fingerprint
from advlab.models.training import (
    History,
    check_training,
    fit_loop,
    lr_schedule,
    make_optimizer,
    update,
)
from advlab.models.wrappers import eval_mode
from advlab.scoring import accuracy_under_attack, call_attack
from advlab.threat import ThreatModel

Method = Literal["pgd-at", "fgsm-at", "trades"]
METHODS: tuple[str, ...] = ("pgd-at", "fgsm-at", "trades")
AttackFn = Callable[..., Tensor]


def default_attack(method: Method) -> AttackFn:
    """The inner maximisation each method uses when ``attack=None`` (see the module docstring)."""
    _check_method(method)
    if method == "pgd-at":
        return functools.partial(pgd, steps=10, early_stop=False, random_start=True)
    if method == "fgsm-at":  # fgsm's step with random_start defaults to 1.25·eps (Wong et al.)
        return functools.partial(fgsm, random_start=True)
    return functools.partial(trades_kl, steps=10)


def adversarial_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
                     threat: ThreatModel, *, method: Method = "pgd-at",
                     attack: AttackFn | None = None, beta: float = 6.0, mix: float = 0.0,
                     generator: torch.Generator | None = None) -> dict[str, float | Tensor]:
    """One min-max update: inner maximisation with ``attack``, then one optimiser step.

    Args:
        model: returns logits; the update runs in train mode (the model's mode is restored).
        optimizer: over ``model``'s parameters; its ``step`` is the only writer of ``.grad``.
        x, y: a batch ``(N, *D)`` inside ``threat.domain`` and int64 labels ``(N,)``.
        threat: the ball ∩ Domain of the inner maximisation (finite eps).
        method, attack, beta, mix: see the module docstring; ``attack`` defaults to
            :func:`default_attack`; ``beta`` weighs TRADES' KL term.
        generator: random starts (passed to attacks that take one).

    Returns:
        ``{"loss", "clean_accuracy", "adversarial_accuracy"}`` as floats (batch accuracies of
        the logits of the update; clean ones from an eval-mode forward when no loss term needs
        them) and ``"x_adv"``, the detached adversarial inputs used.
    """
    check_arguments(method, threat, beta, mix)
    was_training = model.training
    loss, correct, x_adv = adversarial_loss(model, x, y, threat, method=method, attack=attack,
                                            beta=beta, mix=mix, generator=generator)
    update(optimizer, loss)
    model.train(was_training)
    return {"loss": float(loss.detach()),
            "clean_accuracy": float(correct["train_accuracy"]) / x.shape[0],
            "adversarial_accuracy": float(correct["train_adversarial_accuracy"]) / x.shape[0],
            "x_adv": x_adv}


def adversarial_loss(model: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel, *,
                     method: Method, attack: AttackFn | None, beta: float, mix: float,
                     generator: torch.Generator | None, net: nn.Module | None = None
                     ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """The min-max loss of one batch, with the model left in train mode: ``(loss, correct,
    x_adv)``; ``correct`` counts the clean (``"train_accuracy"``) and adversarial
    (``"train_adversarial_accuracy"``) correct predictions of the update's logits. The attack
    runs on ``model``; the training forward goes through ``net`` (default ``model``; the
    DistributedDataParallel wrapper of a distributed run)."""
    attack = attack if attack is not None else default_attack(method)
    net = model if net is None else net
    x, y = x.detach(), y.detach()
    x_adv = call_attack(attack, model, x, y, threat, generator=generator)
    model.train()
    logits_adv = net(x_adv)
    if method == "trades":
        logits = net(x)
        loss = F.cross_entropy(logits, y) + beta * robust_kl(logits_adv, F.softmax(logits, dim=1))
    elif mix > 0:
        logits = net(x)
        loss = mix * F.cross_entropy(logits, y) + (1 - mix) * F.cross_entropy(logits_adv, y)
    else:
        loss = F.cross_entropy(logits_adv, y)
        with eval_mode(model), torch.no_grad():  # monitoring only: no batch-norm update
            logits = model(x)
    correct = {"train_accuracy": (logits.detach().argmax(1) == y).sum(),
               "train_adversarial_accuracy": (logits_adv.detach().argmax(1) == y).sum()}
    return loss, correct, x_adv


@dataclass
class AdversarialHistory(History):
    """:class:`~advlab.models.training.History` with the adversarial figures, one per epoch.

    ``train_accuracy`` is clean and ``train_adversarial_accuracy`` adversarial accuracy on the
    training batches (as seen by the update); ``val_robust_accuracy`` is under ``val_attack``;
    ``eps`` is the training eps at the end of each epoch (smaller during a warm-up ramp).
    """

    train_adversarial_accuracy: list[float] = field(default_factory=list)
    val_robust_accuracy: list[float] = field(default_factory=list)
    eps: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def adversarial_train(model: nn.Module, train: tuple[Tensor, Tensor], threat: ThreatModel, *,
                      method: Method = "pgd-at", attack: AttackFn | None = None,
                      epochs: int = 10, lr: float = 1e-3, batch_size: int = 128,
                      beta: float = 6.0, mix: float = 0.0,
                      val: tuple[Tensor, Tensor] | None = None,
                      val_attack: AttackFn | None = None,
                      select: Literal["robust", "last"] = "robust",
                      optimizer: Literal["adam", "sgd"] = "adam",
                      schedule: Literal["cosine", "cyclic", "piecewise"] | None = None,
                      eps_warmup: int = 0, patience: int | None = None, seed: int = 0,
                      progress: bool = True, checkpoint: str | Path | None = None,
                      resume: bool = False) -> AdversarialHistory:
    """Adversarially train ``model`` in place with :func:`adversarial_step` over ``epochs``.

    Args:
        model: returns logits; its initialisation is the caller's (seed it there).
        train, val: ``(x, y)`` tensors, ``y`` int64; batches go to the model's device.
        threat, method, attack, beta, mix: as in :func:`adversarial_step`.
        epochs, lr, batch_size: the usual. ``optimizer``: Adam, or SGD with momentum 0.9.
        val_attack: robust validation attack, default PGD-10 (``early_stop=True``).
        select: ``"robust"`` keeps the weights of the best robust-validation epoch (Rice et al.
            2020; the first best on ties), ``"last"`` the final ones (also when ``val`` is None).
        schedule: per-batch learning rate: ``"cosine"`` decay, ``"cyclic"`` (0 → lr → 0, Wong
            et al. 2020) or ``"piecewise"`` (×0.1 at 50 % and 75 % of training, Madry et al.).
        eps_warmup: ramp eps linearly from 0 over this many epochs (per batch).
        patience: with ``val`` and ``select="robust"``, stop once robust validation accuracy
            has not improved for this many epochs and keep the best epoch's weights: the early
            stop of Wong et al. 2020 (a PGD check) against FGSM-AT's catastrophic overfitting.
        seed: seeds the private generator of the shuffling and of the attacks' random starts
            (rank r > 0 of a distributed run mixes r in: its shard gets its own starts).
        progress: tqdm bars (epochs, and batches within an epoch) on stderr.
        checkpoint, resume: a checkpoint folder written after every epoch, and whether to
            continue from it. Under torchrun the training is data-parallel
            (:func:`~advlab.models.training.fit_loop`): each rank attacks its shard.

    Returns:
        An :class:`AdversarialHistory`; ``best_epoch`` is the epoch whose weights were kept.
    """
    check_arguments(method, threat, beta, mix)
    x, y = check_training("adversarial_train", train, val, epochs, batch_size, lr)
    if select not in ("robust", "last"):
        raise ValueError(f"adversarial_train: select must be 'robust' or 'last', got {select!r}")
    if not 0 <= eps_warmup <= epochs:
        raise ValueError(f"adversarial_train: eps_warmup must be in [0, epochs], got {eps_warmup}")
    if patience is not None and (val is None or select != "robust" or patience < 1):
        raise ValueError(f"adversarial_train: patience needs val, select='robust' and a value "
                         f">= 1, got patience={patience!r}, select={select!r}")
    device = next(model.parameters()).device
    rank = distributed.rank()
    attack_gen = torch.Generator(device=device).manual_seed(
        seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
    opt = make_optimizer(optimizer, model, lr)
    n_batches = math.ceil(x.shape[0] / batch_size)
    val_attack = val_attack or functools.partial(pgd, steps=10, early_stop=True)

    def ramp(t: int) -> float:  # the eps factor at batch t (counted from 0)
        return min(1.0, (t + 1) / (eps_warmup * n_batches)) if eps_warmup else 1.0

    def step(batch: tuple[Tensor, ...], t: int,
             net: nn.Module = model) -> tuple[Tensor, dict[str, Tensor]]:
        loss, correct, _ = adversarial_loss(
            model, batch[0], batch[1], dataclasses.replace(threat, eps=threat.eps * ramp(t)),
            method=method, attack=attack, beta=beta, mix=mix, generator=attack_gen, net=net)
        return loss, correct

    def validate(m: nn.Module) -> dict[str, float]:
        assert val is not None
        v_loss, v_acc, v_rob = _validate(m, val, threat, val_attack, seed, device)
        return {"val_loss": v_loss, "val_accuracy": v_acc, "val_robust_accuracy": v_rob}

    history = fit_loop(model, step, (x, y), optimizer=opt, epochs=epochs, batch_size=batch_size,
                       seed=seed, scheduler=lr_schedule(schedule, opt, epochs * n_batches),
                       validate=validate if val is not None else None,
                       monitor=("val_robust_accuracy", "max")
                       if val is not None and select == "robust" else None,
                      patience=patience, history=AdversarialHistory(), progress=progress,
                      desc=method, batch_progress=True, checkpoint=checkpoint, resume=resume,
                      fingerprint=fingerprint(
                          method, model, x, threat=(threat.norm, threat.eps), attack=attack,
                          epochs=epochs, lr=lr, batch_size=batch_size, beta=beta, mix=mix,
                          select=select, optimizer=optimizer, schedule=schedule,
                          eps_warmup=eps_warmup, patience=patience, seed=seed,
                          val=None if val is None else list(val[0].shape)),
                      generators={"attack": attack_gen})
    history.eps = [threat.eps * ramp((e + 1) * n_batches - 1)
                   for e in range(len(history.train_loss))]
    return history


# ---------------------------------------------------------------------------------- helpers
def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown adversarial-training method {method!r}; known: "
                         f"{', '.join(METHODS)}")


def check_arguments(method: str, threat: ThreatModel, beta: float, mix: float) -> None:
    """The checks every adversarial-training entry point makes; ``ValueError`` otherwise."""
    _check_method(method)
    if not isinstance(threat, ThreatModel):
        raise ValueError(f"threat must be a ThreatModel, got {type(threat).__name__}")
    if not threat.bounded or threat.eps <= 0:
        raise ValueError(f"adversarial training needs a finite eps > 0, got {threat.eps!r}")
    if not (isinstance(mix, (int, float)) and 0.0 <= mix <= 1.0):
        raise ValueError(f"mix must be in [0, 1] (the share of clean loss), got {mix!r}")
    if method == "trades" and mix != 0:
        raise ValueError(f"mix is not used by TRADES (its loss has its own clean term), got "
                         f"{mix!r}; weigh the robust term with beta instead")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


def _validate(model: nn.Module, val: tuple[Tensor, Tensor], threat: ThreatModel,
              val_attack: AttackFn, seed: int, device: torch.device,
              batch_size: int = 500) -> tuple[float, float, float]:
    """Clean loss and accuracy, and robust accuracy under ``val_attack`` (the one scoring
    rule), with the same random starts every epoch so that epochs are compared fairly."""
    x, y = val[0].to(device), val[1].to(device)
    with eval_mode(model), torch.no_grad():
        loss = sum(float(F.cross_entropy(model(x[s:s + batch_size]), y[s:s + batch_size],
                                         reduction="sum")) for s in range(0, len(y), batch_size))
    clean, robust = accuracy_under_attack(
        model, x, y, threat, val_attack, batch_size=batch_size,
        generator=torch.Generator(device=device).manual_seed(seed + 1))
    return loss / len(y), clean, robust

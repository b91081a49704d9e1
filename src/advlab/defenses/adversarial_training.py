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

import copy
import dataclasses
import functools
import inspect
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from advlab.attacks import fgsm, pgd
from advlab.defenses.trades import trades_kl
from advlab.evaluation.score import score
from advlab.models.training import History, check_training
from advlab.models.wrappers import eval_mode
from advlab.threat import ThreatModel

Method = Literal["pgd-at", "fgsm-at", "trades"]
METHODS: tuple[str, ...] = ("pgd-at", "fgsm-at", "trades")
AttackFn = Callable[..., Tensor]
PAPERS = {"pgd-at": "Madry et al., ICLR 2018, arXiv:1706.06083",
          "fgsm-at": "Wong, Rice, Kolter, ICLR 2020, arXiv:2001.03994",
          "trades": "Zhang et al., ICML 2019, arXiv:1901.08573"}


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
    _check_arguments(method, threat, beta, mix)
    attack = attack if attack is not None else default_attack(method)
    x, y = x.detach(), y.detach()
    x_adv = _call_attack(attack, model, x, y, threat, generator)
    was_training = model.training
    model.train()
    logits_adv = model(x_adv)
    if method == "trades":
        logits = model(x)
        kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1),
                      reduction="batchmean")
        loss = F.cross_entropy(logits, y) + beta * kl
    elif mix > 0:
        logits = model(x)
        loss = mix * F.cross_entropy(logits, y) + (1 - mix) * F.cross_entropy(logits_adv, y)
    else:
        loss = F.cross_entropy(logits_adv, y)
        with eval_mode(model), torch.no_grad():  # monitoring only: no batch-norm update
            logits = model(x)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.train(was_training)
    return {"loss": float(loss.detach()),
            "clean_accuracy": float((logits.detach().argmax(1) == y).float().mean()),
            "adversarial_accuracy": float((logits_adv.detach().argmax(1) == y).float().mean()),
            "x_adv": x_adv}


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
                      eps_warmup: int = 0, seed: int = 0,
                      progress: bool = True) -> AdversarialHistory:
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
        seed: seeds the private generator of the shuffling and of the attacks' random starts.
        progress: tqdm bars (epochs, and batches within an epoch) on stderr.

    Returns:
        An :class:`AdversarialHistory`; ``best_epoch`` is the epoch whose weights were kept.
    """
    _check_arguments(method, threat, beta, mix)
    x, y = check_training("adversarial_train", train, val, epochs, batch_size, lr)
    if select not in ("robust", "last"):
        raise ValueError(f"adversarial_train: select must be 'robust' or 'last', got {select!r}")
    if not 0 <= eps_warmup <= epochs:
        raise ValueError(f"adversarial_train: eps_warmup must be in [0, epochs], got {eps_warmup}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    attack_gen = torch.Generator(device=device).manual_seed(seed)
    opt = _optimizer(optimizer, model, lr)
    n_batches = math.ceil(x.shape[0] / batch_size)
    sched = _schedule(schedule, opt, epochs * n_batches)
    val_attack = val_attack or functools.partial(pgd, steps=10, early_stop=True)
    history, best_acc, best_state = AdversarialHistory(), -math.inf, None
    was_training = model.training
    bar = tqdm(range(epochs), desc=method, unit="epoch", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    for epoch in bar:
        t0, sums = time.perf_counter(), torch.zeros(3, dtype=torch.float64)
        order = torch.randperm(x.shape[0], generator=gen)
        inner = tqdm(range(n_batches), desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                     disable=not progress, file=sys.stderr, dynamic_ncols=True)
        for b in inner:
            done = epoch * n_batches + b + 1
            ramp = min(1.0, done / (eps_warmup * n_batches)) if eps_warmup else 1.0
            threat_b = dataclasses.replace(threat, eps=threat.eps * ramp)
            idx = order[b * batch_size:(b + 1) * batch_size]
            out = adversarial_step(model, opt, x[idx].to(device), y[idx].to(device), threat_b,
                                   method=method, attack=attack, beta=beta, mix=mix,
                                   generator=attack_gen)
            if sched is not None:
                sched.step()
            sums += torch.tensor([float(out[k]) for k in
                                  ("loss", "clean_accuracy", "adversarial_accuracy")],
                                 dtype=torch.float64) * len(idx)
        inner.close()
        loss, acc, adv_acc = (sums / x.shape[0]).tolist()
        history.train_loss.append(loss)
        history.train_accuracy.append(acc)
        history.train_adversarial_accuracy.append(adv_acc)
        history.eps.append(threat_b.eps)
        postfix = {"loss": f"{loss:.3f}", "acc": f"{acc:.3f}", "adv": f"{adv_acc:.3f}"}
        if val is not None:
            v_loss, v_acc, v_rob = _validate(model, val, threat, val_attack, seed, device)
            history.val_loss.append(v_loss)
            history.val_accuracy.append(v_acc)
            history.val_robust_accuracy.append(v_rob)
            postfix.update(val=f"{v_acc:.3f}", val_rob=f"{v_rob:.3f}")
        if val is not None and select == "robust":
            if history.val_robust_accuracy[-1] > best_acc:
                best_acc, best_state = history.val_robust_accuracy[-1], \
                    copy.deepcopy(model.state_dict())
                history.best_epoch = epoch
        else:
            history.best_epoch = epoch
        history.seconds.append(time.perf_counter() - t0)
        bar.set_postfix(postfix)
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.train(was_training)
    return history


def defense_record(method: Method, threat: ThreatModel, **params: Any) -> dict[str, Any]:
    """A JSON-serialisable description of an adversarial-training run, for the model sidecar
    (``models.io.save(..., defense=defense_record(...))``).

    ``params`` are :func:`adversarial_train`'s keywords as passed (``attack``, ``epochs``,
    ``lr``, ``seed``, ...); the attack becomes ``{"name", knobs...}`` with its resolved
    ``step_size`` when it is a default, ``beta`` is kept for TRADES and ``mix`` for the others.
    """
    _check_arguments(method, threat, float(params.get("beta", 6.0)),
                     float(params.get("mix", 0.0)))
    attack = params.pop("attack", None) or default_attack(method)
    beta, mix = float(params.pop("beta", 6.0)), float(params.pop("mix", 0.0))
    record: dict[str, Any] = {"defense": "adversarial_training", "method": method,
                              "paper": PAPERS[method], "norm": threat.norm, "eps": threat.eps,
                              "domain": "box" if threat.domain.is_box else "constrained",
                              "attack": _describe_attack(attack, threat)}
    record.update({"beta": beta} if method == "trades" else {"mix": mix})
    if params.get("val_attack") is not None:
        params["val_attack"] = _describe_attack(params["val_attack"], threat)
    for key, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"defense_record: {key}={value!r} is not JSON-serialisable") from None
        record[key] = value
    return record


# ---------------------------------------------------------------------------------- helpers
def _describe_attack(attack: AttackFn, threat: ThreatModel) -> dict[str, Any]:
    fn = attack.func if isinstance(attack, functools.partial) else attack
    knobs = dict(attack.keywords) if isinstance(attack, functools.partial) else {}
    out: dict[str, Any] = {"name": getattr(fn, "__name__", type(fn).__name__)}
    try:
        defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                    if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    except (TypeError, ValueError):
        defaults = {}
    for key, value in {**defaults, **knobs}.items():
        if key in ("generator", "target"):
            continue
        out[key] = value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)
    if out.get("step_size") is None and "steps" in out:  # pgd and trades_kl: 2.5·eps/steps
        out["step_size"] = 2.5 * threat.eps / int(out["steps"])
    elif out.get("step_size") is None and out["name"] == "fgsm":
        out["step_size"] = threat.eps * (1.25 if out.get("random_start") else 1.0)
    return out


def _call_attack(attack: AttackFn, model: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel,
                 generator: torch.Generator | None) -> Tensor:
    if generator is not None and _takes_generator(attack):
        x_adv = attack(model, x, y, threat, generator=generator)
    else:
        x_adv = attack(model, x, y, threat)
    if not isinstance(x_adv, Tensor) or x_adv.shape != x.shape:
        raise ValueError(f"adversarial_step: the attack returned {getattr(x_adv, 'shape', x_adv)}"
                         f", expected a tensor of shape {tuple(x.shape)}")
    return x_adv.detach()


def _takes_generator(attack: AttackFn) -> bool:
    try:
        params = inspect.signature(attack).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown adversarial-training method {method!r}; known: "
                         f"{', '.join(METHODS)}")


def _check_arguments(method: str, threat: ThreatModel, beta: float, mix: float) -> None:
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


def _optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def _schedule(name: str | None, opt: torch.optim.Optimizer,
              total: int) -> torch.optim.lr_scheduler.LambdaLR | None:
    factors: dict[str, Callable[[int], float]] = {
        "cosine": lambda t: 0.5 * (1 + math.cos(math.pi * t / total)),
        "cyclic": lambda t: 1 - abs(2 * t / total - 1),
        "piecewise": lambda t: 1.0 if t < 0.5 * total else 0.1 if t < 0.75 * total else 0.01,
    }
    if name is None:
        return None
    if name not in factors:
        raise ValueError(f"schedule must be None, 'cosine', 'cyclic' or 'piecewise', got {name!r}")
    return torch.optim.lr_scheduler.LambdaLR(opt, factors[name])


def _validate(model: nn.Module, val: tuple[Tensor, Tensor], threat: ThreatModel,
              val_attack: AttackFn, seed: int, device: torch.device,
              batch_size: int = 500) -> tuple[float, float, float]:
    """Clean loss and accuracy, and robust accuracy under ``val_attack`` (the one scoring
    rule), with the same random starts every epoch so that epochs are compared fairly."""
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    loss_sum, correct, robust, n = 0.0, 0, 0, val[0].shape[0]
    for start in range(0, n, batch_size):
        xb = val[0][start:start + batch_size].to(device)
        yb = val[1][start:start + batch_size].to(device)
        with eval_mode(model), torch.no_grad():
            loss_sum += float(F.cross_entropy(model(xb), yb, reduction="sum"))
        s = score(model, xb, yb, _call_attack(val_attack, model, xb, yb, threat, gen), threat)
        correct += int(s.clean_correct.sum())
        robust += int((s.clean_correct & ~s.success).sum())
    return loss_sum / n, correct / n, robust / n

"""Training: the one epoch loop (:func:`fit_loop`), standard training (:func:`fit`) with
validation, early stopping and a history, and the zoo-model trainer :func:`train_classifier`.

Every trainer in advlab (standard, distillation, adversarial training) is a ``step`` function
plus a short wrapper around :func:`fit_loop`."""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.data.base import Dataset
from advlab.models import distributed
from advlab.models.checkpoint import fingerprint, save_checkpoint, start_from
from advlab.models.device import resolve_device
from advlab.models.wrappers import eval_mode


@dataclass
class History:
    """What happened during :func:`fit`: one entry per epoch, and the epoch that was kept."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, evaluated in eval mode and in chunks."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"accuracy: x has {x.shape[0]} rows, y has {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError("accuracy: empty input")
    correct = torch.zeros((), dtype=torch.long)
    with eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start:start + batch_size])
            correct += (logits.argmax(1) == y[start:start + batch_size]).sum().cpu()
    return float(correct) / x.shape[0]


@torch.no_grad()
def _evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> tuple[float, float]:
    loss_sum, correct = torch.zeros(()), torch.zeros(())
    with eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start:start + batch_size])
            target = y[start:start + batch_size]
            loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum").cpu()
            correct += (logits.argmax(1) == target).sum().cpu()
    return float(loss_sum) / x.shape[0], float(correct) / x.shape[0]


def check_training(caller: str, train: tuple[Tensor, Tensor],
                   val: tuple[Tensor, Tensor] | None, epochs: int, batch_size: int,
                   lr: float) -> tuple[Tensor, Tensor]:
    """The checks every trainer makes; ``ValueError`` names ``caller``. Returns ``train``."""
    for name, split in (("train", train), ("val", val)):
        if split is None:
            continue
        if not (isinstance(split, tuple) and len(split) == 2):
            raise ValueError(f"{caller}: {name} must be a tuple (x, y) of tensors")
        x, y = split
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"{caller}: {name} has {x.shape[0]} inputs and {y.shape[0]} labels")
        if y.dtype != torch.long:
            raise ValueError(f"{caller}: {name} labels must be int64 class indices, got "
                             f"{y.dtype}")
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"{caller}: need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, "
                         f"{batch_size}, {lr}")
    return train


Step = Callable[..., tuple[Tensor, dict[str, Tensor]]]
"""One training step: ``step(batch, t) -> (loss, sums)`` on the tensors of one batch (``t``
counts batches from 0 over the whole run). ``loss`` is the batch's mean loss, to be minimised;
``sums`` maps :class:`History` fields (``"train_accuracy"``...) to the batch's *sum* of that
figure (a count of correct predictions, say), detached. In a distributed run the loop calls
``step(batch, t, net)``: ``net`` is the model wrapped in DistributedDataParallel, through which
the step's *training* forward must go (attacks keep using the plain model)."""
Validate = Callable[[nn.Module], Mapping[str, float]]


def update(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One optimiser step on ``loss``: the only place in advlab's training that writes ``.grad``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def fit_loop(model: nn.Module, step: Step, data: tuple[Tensor, ...], *,
             optimizer: torch.optim.Optimizer, epochs: int, batch_size: int, seed: int = 0,
             scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
             validate: Validate | None = None,
             monitor: tuple[str, Literal["min", "max"]] | None = None,
             patience: int | None = None, history: History | None = None,
             progress: bool = True, desc: str = "fit", batch_progress: bool = False,
             checkpoint: str | Path | None = None, resume: bool = False,
             fingerprint: str = "", generators: Mapping[str, torch.Generator] | None = None
             ) -> History:
    """The one epoch loop of advlab's trainers (standard training, distillation, adversarial
    training): shuffle, step, update, sum, validate, keep the best epoch, restore the mode.

    Under torchrun (a process group of N processes) it trains data-parallel: the model is
    wrapped in DistributedDataParallel, each global batch of the seeded shuffle is split
    row-wise across the ranks (rank r takes rows r, r+N, ...), the local loss is weighted so
    that the averaged gradient is the global batch's, the epoch sums are all-reduced, and rank
    0 validates (broadcasting its figures) and writes the checkpoints; a last batch smaller
    than N is dropped. The updates are those of one process, up to the attacks' random starts
    and the order of floating-point sums.

    Args:
        model: trained in place, in train mode (its mode is restored at the end).
        step: computes one batch's loss and sums (see :data:`Step`); the loop does the update.
        data: tensors with the same first dimension (e.g. ``(x, y)``); each batch is moved to
            the model's device.
        optimizer, scheduler: the scheduler (optional) steps after every batch.
        epochs, batch_size: the usual (``batch_size`` is the global batch of a distributed
            run). seed: seeds a private generator for the shuffling.
        validate: called after each epoch; returns History fields (``"val_loss"``...) and values.
        monitor: ``(field, "min"|"max")``: keep the weights of the epoch where ``field`` was best
            (the first on ties); ``None`` keeps the last epoch.
        patience: stop after this many epochs without a better ``monitor`` value.
        history: the :class:`History` (or subclass) to fill; a new one by default. Its
            ``seconds`` field, when it has one, gets each epoch's wall time.
        progress, desc, batch_progress: tqdm bars on stderr (epochs, and batches if asked).
        checkpoint: a folder for a checkpoint after every epoch (:mod:`.checkpoint`).
        resume: continue from the newest checkpoint there (its ``fingerprint`` must match).
        fingerprint: identifies the training configuration in the checkpoints.
        generators: further generators (the attacks' random starts) checkpointed with the loop.

    Returns:
        ``history``, with ``best_epoch`` the epoch whose weights the model ends with.
    """
    history = history if history is not None else History()
    n = data[0].shape[0]
    if any(t.shape[0] != n for t in data):
        raise ValueError(f"fit_loop: the data tensors have {[t.shape[0] for t in data]} rows")
    device = next((p.device for p in model.parameters()), data[0].device)
    gen = torch.Generator().manual_seed(seed)
    rank, world = distributed.rank(), distributed.world_size()
    if world > 1 and batch_size < world:
        raise ValueError(f"fit_loop: batch_size {batch_size} is smaller than the {world} "
                         "processes it is split across")
    net = distributed.data_parallel(model, step, device) if world > 1 else None
    n_batches = math.ceil(n / batch_size)
    if world > 1 and 0 < n % batch_size < world:
        n_batches -= 1  # a last batch with fewer rows than processes is dropped
    rows = min(n, n_batches * batch_size)
    keep = {"shuffle": gen, **(generators or {})}
    first, best, waited, best_state = start_from(
        checkpoint, resume=resume, model=model, optimizer=optimizer, scheduler=scheduler,
        generators=keep, fingerprint=fingerprint, history=history)
    was_training = model.training
    bar = tqdm(range(first, epochs if not history.stopped_early else first), desc=desc,
               unit="epoch", disable=not progress or rank != 0, leave=False, file=sys.stderr,
               dynamic_ncols=True)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen)
        sums: dict[str, Tensor] = {}
        inner = tqdm(range(n_batches), desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                     disable=not (progress and batch_progress) or rank != 0, file=sys.stderr,
                     dynamic_ncols=True)
        for b in inner:
            idx = order[b * batch_size:(b + 1) * batch_size]
            if net is None:
                loss, batch_sums = step(tuple(t[idx.to(t.device)].to(device) for t in data),
                                        epoch * n_batches + b)
                update(optimizer, loss)
            else:
                local = idx[rank::world]
                loss, batch_sums = step(tuple(t[local.to(t.device)].to(device) for t in data),
                                        epoch * n_batches + b, net)
                update(optimizer, loss * (local.numel() * world / idx.numel()))
                idx = local
            if scheduler is not None:
                scheduler.step()
            for key, value in {"train_loss": loss.detach() * idx.numel(), **batch_sums}.items():
                sums[key] = sums.get(key, 0) + value.detach().double()
        inner.close()
        for key, value in distributed.all_sum(sums).items():
            getattr(history, key).append(float(value) / rows)
        figures = validate(model) if validate is not None and rank == 0 else {}
        for key, value in distributed.broadcast(dict(figures)).items():
            getattr(history, key).append(float(value))
        if hasattr(history, "seconds"):
            history.seconds.append(time.perf_counter() - t0)
        bar.set_postfix({k.replace("train_", ""): f"{getattr(history, k)[-1]:.3f}"
                         for k in (*sums, *(("val_accuracy",) if history.val_accuracy else ()))})
        if monitor is None:
            history.best_epoch = epoch
        else:
            value = getattr(history, monitor[0])[-1]
            if best is None or (value < best if monitor[1] == "min" else value > best):
                best, best_state, waited = value, copy.deepcopy(model.state_dict()), 0
                history.best_epoch = epoch
            else:
                waited += 1
                history.stopped_early = patience is not None and waited >= patience
        if checkpoint is not None and rank == 0:
            save_checkpoint(checkpoint, epoch, model=model, optimizer=optimizer,
                            scheduler=scheduler, generators=keep, best=best_state,
                            state={"fingerprint": fingerprint, "best": best, "waited": waited,
                                   "history": history.as_dict()})
        if history.stopped_early:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.train(was_training)
    return history


def make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """``"adam"``, or ``"sgd"`` with momentum 0.9, over ``model``'s parameters."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def lr_schedule(name: str | None, opt: torch.optim.Optimizer,
                total: int) -> torch.optim.lr_scheduler.LambdaLR | None:
    """A per-batch learning-rate schedule over ``total`` batches: ``"cosine"`` decay,
    ``"cyclic"`` (0 -> lr -> 0, Wong et al. 2020), ``"piecewise"`` (x0.1 at 50 % and 75 %,
    Madry et al. 2018) or ``None``."""
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


def fit(model: nn.Module, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor] | None = None,
        *, epochs: int = 10, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
        weight_decay: float = 0.0, patience: int | None = None,
        class_weight: Tensor | None = None, progress: bool = True,
        checkpoint: str | Path | None = None, resume: bool = False) -> History:
    """Train ``model`` with Adam and cross-entropy; keep the weights of the best validation epoch.

    Args:
        model: any ``nn.Module`` returning logits; trained in place.
        train, val: ``(x, y)`` tensors; ``y`` holds int64 class indices.
        epochs, lr, batch_size, weight_decay: the usual.
        seed: seeds a private ``torch.Generator`` for the shuffling (the caller seeds the
            initialisation, e.g. ``torch.manual_seed`` in the CLI).
        patience: stop after this many epochs without a better validation loss (needs ``val``).
        class_weight: optional per-class loss weights (imbalanced security data).
        progress: show a tqdm progress bar on stderr.
        checkpoint, resume: a checkpoint folder written after every epoch, and whether to
            continue from it (see :func:`fit_loop`, which also trains data-parallel under
            torchrun).

    Returns:
        A :class:`History`. With ``val``, the model ends with its best-validation-loss weights.
    """
    x, y = check_training("fit", train, val, epochs, batch_size, lr)
    if patience is not None and val is None:
        raise ValueError("fit: early stopping (patience) needs a validation set")
    weight = None if class_weight is None else class_weight.to(x.device, torch.float32)

    def step(batch: tuple[Tensor, ...], _t: int,
             net: nn.Module = model) -> tuple[Tensor, dict[str, Tensor]]:
        xb, yb = batch
        logits = net(xb)
        correct = (logits.detach().argmax(1) == yb).sum()
        return nn.functional.cross_entropy(logits, yb, weight=weight), {"train_accuracy": correct}

    def validate(m: nn.Module) -> dict[str, float]:
        assert val is not None
        v_loss, v_acc = _evaluate(m, val[0], val[1], 1024)
        return {"val_loss": v_loss, "val_accuracy": v_acc}

    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return fit_loop(model, step, (x, y), optimizer=opt, epochs=epochs, batch_size=batch_size,
                    seed=seed, validate=validate if val is not None else None,
                    monitor=("val_loss", "min") if val is not None else None,
                    patience=patience, progress=progress, checkpoint=checkpoint, resume=resume,
                    fingerprint=fingerprint("fit", model, x, epochs=epochs, lr=lr,
                                            batch_size=batch_size, seed=seed,
                                            weight_decay=weight_decay, patience=patience))


@dataclass
class TrainedModel:
    """A model trained by :func:`train_classifier`, with what is needed to save and rebuild it."""

    model: nn.Module
    architecture: str
    arguments: dict[str, object]
    history: History
    metrics: dict[str, float]
    settings: dict[str, object]


def train_classifier(dataset: Dataset, architecture: str = "mlp", *,
                     hidden: tuple[int, ...] | None = None, epochs: int = 10, lr: float = 1e-3,
                     batch_size: int = 128, seed: int = 0, val_fraction: float = 0.1,
                     patience: int | None = None, weight_decay: float = 0.0,
                     device: str | torch.device = "cpu", progress: bool = True,
                     checkpoint: str | Path | None = None, resume: bool = False
                     ) -> TrainedModel:
    """Build a zoo model for ``dataset``, train it with :func:`fit` and measure test accuracy.

    A seeded, stratified ``val_fraction`` of the training set is held out for model selection
    (the test set is never used for it). The initialisation is drawn from a private generator
    seeded by ``seed``, so the global RNG is left alone.
    """
    device = resolve_device(device)
    arguments = zoo_arguments(dataset, architecture, hidden)
    model = new_model(architecture, arguments, seed=seed, device=device)
    (x, y), val = split_validation(dataset, val_fraction, seed=seed, device=device)
    history = fit(model, (x, y), val, epochs=epochs, lr=lr,
                  batch_size=batch_size, seed=seed, patience=patience,
                  weight_decay=weight_decay, progress=progress, checkpoint=checkpoint,
                  resume=resume)
    metrics = {"test_accuracy": accuracy(model, dataset.x_test.to(device),
                                         dataset.y_test.to(device)),
               "train_accuracy": history.train_accuracy[-1]}
    if history.val_accuracy:
        metrics["val_accuracy"] = history.val_accuracy[history.best_epoch]
    settings = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                "val_fraction": val_fraction, "patience": patience,
                "weight_decay": weight_decay, "epochs_run": len(history.train_loss)}
    return TrainedModel(model.eval(), architecture, arguments, history, metrics, settings)


def zoo_arguments(dataset: Dataset, architecture: str,
                  hidden: tuple[int, ...] | None = None) -> dict[str, object]:
    """The zoo arguments of ``architecture`` for ``dataset``'s inputs and classes."""
    shape = dataset.input_shape
    arguments: dict[str, object]
    if architecture == "small_cnn":
        if len(shape) != 3:
            raise ValueError(f"small_cnn needs image inputs (C, H, W); dataset {dataset.name!r} "
                             f"has inputs of shape {shape}: use --model mlp")
        arguments = {"in_shape": list(shape), "classes": dataset.num_classes}
    else:
        arguments = {"in_features": math.prod(shape), "classes": dataset.num_classes}
    if hidden is not None:
        arguments["hidden"] = list(hidden) if architecture == "mlp" else int(hidden[0])
    return arguments


def new_model(architecture: str, arguments: dict[str, object], *, seed: int = 0,
              device: str | torch.device = "cpu") -> nn.Module:
    """A zoo network whose initialisation comes from a forked RNG seeded with ``seed`` (the
    caller's global RNG is left as it was)."""
    from advlab.models.zoo import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(architecture, **arguments).to(device)


def split_validation(dataset: Dataset, val_fraction: float, *, seed: int = 0,
                     device: str | torch.device = "cpu"
                     ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
    """The training split, minus a seeded, stratified ``val_fraction`` held out for model
    selection (``None`` when ``val_fraction`` is 0). The test split is never touched."""
    from sklearn.model_selection import train_test_split

    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    x, y = dataset.x_train, dataset.y_train
    if val_fraction == 0:
        return (x.to(device), y.to(device)), None
    idx_train, idx_val = train_test_split(
        torch.arange(len(y)).numpy(), test_size=val_fraction, random_state=seed,
        stratify=y.numpy())
    return ((x[idx_train].to(device), y[idx_train].to(device)),
            (x[idx_val].to(device), y[idx_val].to(device)))

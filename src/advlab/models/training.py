"""Standard (non-adversarial) training: ``fit`` with validation, early stopping and a history."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.data.base import Dataset
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


def fit(model: nn.Module, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor] | None = None,
        *, epochs: int = 10, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
        weight_decay: float = 0.0, patience: int | None = None,
        class_weight: Tensor | None = None, progress: bool = True) -> History:
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

    Returns:
        A :class:`History`. With ``val``, the model ends with its best-validation-loss weights.
    """
    x, y = check_training("fit", train, val, epochs, batch_size, lr)
    if patience is not None and val is None:
        raise ValueError("fit: early stopping (patience) needs a validation set")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    weight = None if class_weight is None else class_weight.to(x.device, torch.float32)
    history, best_loss, best_state, waited = History(), math.inf, None, 0
    was_training = model.training
    bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(x.shape[0], generator=gen).to(x.device)
        loss_sum, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * idx.numel()
            correct += (logits.detach().argmax(1) == y[idx]).sum()
        history.train_loss.append(float(loss_sum) / x.shape[0])
        history.train_accuracy.append(float(correct) / x.shape[0])
        postfix = {"loss": f"{history.train_loss[-1]:.4f}",
                   "acc": f"{history.train_accuracy[-1]:.3f}"}
        if val is not None:
            v_loss, v_acc = _evaluate(model, val[0], val[1], 1024)
            history.val_loss.append(v_loss)
            history.val_accuracy.append(v_acc)
            postfix.update(val_acc=f"{v_acc:.3f}")
            if v_loss < best_loss:
                best_loss, best_state, waited = v_loss, copy.deepcopy(model.state_dict()), 0
                history.best_epoch = epoch
            else:
                waited += 1
                if patience is not None and waited >= patience:
                    history.stopped_early = True
                    bar.set_postfix(postfix)
                    break
        else:
            history.best_epoch = epoch
        bar.set_postfix(postfix)
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.train(was_training)
    return history


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
                     device: str | torch.device = "cpu", progress: bool = True) -> TrainedModel:
    """Build a zoo model for ``dataset``, train it with :func:`fit` and measure test accuracy.

    A seeded, stratified ``val_fraction`` of the training set is held out for model selection
    (the test set is never used for it). The initialisation is drawn from a private generator
    seeded by ``seed``, so the global RNG is left alone.
    """
    arguments = zoo_arguments(dataset, architecture, hidden)
    model = new_model(architecture, arguments, seed=seed, device=device)
    (x, y), val = split_validation(dataset, val_fraction, seed=seed, device=device)
    history = fit(model, (x, y), val, epochs=epochs, lr=lr,
                  batch_size=batch_size, seed=seed, patience=patience,
                  weight_decay=weight_decay, progress=progress)
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

"""Defensive distillation (Papernot, McDaniel, Wu, Jha, Swami, "Distillation as a Defense to
Adversarial Perturbations against Deep Neural Networks", IEEE S&P 2016; arXiv:1511.04508), and
why it is not a defence (Carlini and Wagner, "Defensive Distillation is Not Robust to
Adversarial Examples", 2016, arXiv:1607.04311; S&P 2017 §VIII, arXiv:1608.04644).

The paper's softmax at temperature ``T`` over the logits ``z(X)`` is

    F_i(X) = exp(z_i(X) / T) / sum_l exp(z_l(X) / T),

and the recipe has four steps: (1) train a teacher ``F`` on the hard labels with the softmax at
``T``; (2) relabel the training set with its soft labels ``F(X)``; (3) train a student ``F^d``
of the same architecture at the same ``T`` on those soft labels, minimising the cross-entropy
with soft targets ``-1/|X| sum_X sum_i F_i(X) log F^d_i(X)``; (4) deploy the student at
``T = 1``. Training at ``T`` drives the logits to about ``T`` times their usual size, so at
``T = 1`` the softmax saturates: its Jacobian (which carries a factor ``1/T`` at training
temperature) underflows to zero in float32. Attacks that differentiate the softmax or a
cross-entropy (JSMA on ``F``, FGSM) then see no gradient and fail; attacks on the logits
(C&W's f6) are untouched. advlab's ``gradients_nonzero`` sanity check flags exactly this.

Temperature enters only the losses (``z / T``); the networks are plain zoo models returning
``z``, so the deployed student saves and loads like any other model. See docs/distillation.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from advlab.data.base import Dataset
from advlab.models.training import (
    History,
    accuracy,
    check_training,
    fit,
    fit_loop,
    new_model,
    split_validation,
    zoo_arguments,
)
from advlab.models.wrappers import eval_mode

PAPER = ("Papernot, McDaniel, Wu, Jha, Swami, Distillation as a Defense to Adversarial "
         "Perturbations against Deep Neural Networks, IEEE S&P 2016 (arXiv:1511.04508)")


@dataclass
class Distilled:
    """The result of :func:`distill`.

    ``model`` is the deployed student (eval mode, returns its raw logits: ``T = 1``);
    ``teacher`` the network trained on hard labels at ``temperature``. ``metrics`` holds
    ``test_accuracy`` (student) and ``teacher_test_accuracy``.
    """

    model: nn.Module
    teacher: nn.Module
    architecture: str
    arguments: dict[str, Any]
    temperature: float
    teacher_history: History
    student_history: History
    metrics: dict[str, float]
    settings: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """A JSON-ready description for the model sidecar's ``defense`` key."""
        return {"defense": "distillation", "method": "distillation", "paper": PAPER,
                "temperature": self.temperature, "deployed_temperature": 1.0,
                "architecture": self.architecture,
                **{k: v for k, v in self.settings.items() if k != "temperature"},
                "teacher_test_accuracy": self.metrics["teacher_test_accuracy"],
                "test_accuracy": self.metrics["test_accuracy"]}

    def save(self, folder: str | Path, *, dataset: Dataset | None = None,
             dataset_options: dict[str, Any] | None = None) -> Path:
        """Write the deployed student with :func:`advlab.models.save`, the ``defense`` record in
        its sidecar, so ``advlab evaluate --model folder`` rebuilds it and reports the defence.
        ``dataset`` (with the ``dataset_options`` it was loaded with, e.g. ``{"upsample":
        True}``) lets the CLI reload the same data."""
        from advlab.models.io import save

        extra: dict[str, Any] = {}
        if dataset is not None:
            extra["dataset"] = {"name": dataset.name, "path": None,
                                "options": dict(dataset_options or {}), "info": dataset.info,
                                "input_shape": list(dataset.input_shape)}
            extra["class_names"] = list(dataset.class_names)
        return save(self.model, folder, architecture=self.architecture,
                    arguments=self.arguments, defense=self.record(), metrics=self.metrics,
                    training=self.settings, history={"teacher": self.teacher_history.as_dict(),
                                                     "student": self.student_history.as_dict()},
                    seed=self.settings["seed"], **extra)


def distill(dataset: Dataset, architecture: str = "small_cnn", *, temperature: float = 100.0,
            epochs: int = 30, lr: float = 2e-3, batch_size: int = 64,
            teacher_epochs: int | None = None, hidden: tuple[int, ...] | None = None,
            val_fraction: float = 0.0, seed: int = 0, device: str | torch.device = "cpu",
            progress: bool = True) -> Distilled:
    """Defensive distillation (Papernot et al., S&P 2016, arXiv:1511.04508): teacher at ``T``,
    soft labels ``F(X) = softmax(z(X) / T)``, student at ``T`` on them, deployed at ``T = 1``.

    Args:
        dataset: an :class:`advlab.data.Dataset`; its training split is used.
        architecture, hidden: a zoo model, as in :func:`advlab.models.train_classifier`.
        temperature: ``T > 0`` (the paper's MNIST choice is 100).
        epochs, lr, batch_size: the student's Adam training; ``teacher_epochs`` defaults to
            ``epochs``. At a high ``T`` the logits must grow about ``T``-fold, so training
            takes more epochs than usual (28x28 digits, T = 100: 97.3% after 30, 94.7% after 15).
        val_fraction: a seeded stratified hold-out; both networks keep their best epoch by the
            cross-entropy at ``T`` on its hard labels.
        seed: both networks start from the initialisation a private RNG seeded with ``seed``
            draws (the global RNG is left alone), and it seeds the shuffling.

    Returns:
        A :class:`Distilled`; its ``model`` returns the student's raw logits, in eval mode.
    """
    temperature = _check_temperature(temperature)
    if teacher_epochs is None:
        teacher_epochs = epochs
    if epochs < 1 or teacher_epochs < 1:
        raise ValueError(f"distill: need epochs >= 1 and teacher_epochs >= 1, got {epochs}, "
                         f"{teacher_epochs}")
    arguments = zoo_arguments(dataset, architecture, hidden)
    (x, y), val = split_validation(dataset, val_fraction, seed=seed, device=device)
    teacher = new_model(architecture, arguments, seed=seed, device=device)
    teacher_history = fit(AtTemperature(teacher, temperature), (x, y), val, epochs=teacher_epochs,
                          lr=lr, batch_size=batch_size, seed=seed, progress=progress)
    soft = soft_labels(teacher, x, temperature)
    student = new_model(architecture, arguments, seed=seed, device=device)
    student_history = fit_soft_labels(student, x, soft, val, temperature=temperature,
                                      epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                                      labels=y, progress=progress)
    x_test, y_test = dataset.x_test.to(device), dataset.y_test.to(device)
    metrics = {"test_accuracy": accuracy(student, x_test, y_test),
               "teacher_test_accuracy": accuracy(teacher, x_test, y_test),
               "train_accuracy": student_history.train_accuracy[-1]}
    settings = {"temperature": temperature, "epochs": epochs, "teacher_epochs": teacher_epochs,
                "lr": lr, "batch_size": batch_size, "seed": seed, "val_fraction": val_fraction,
                "epochs_run": len(student_history.train_loss),
                "teacher_epochs_run": len(teacher_history.train_loss)}
    return Distilled(student.eval(), teacher.eval(), architecture, arguments, temperature,
                     teacher_history, student_history, metrics, settings)


class AtTemperature(nn.Module):
    """``z(x) / T``: a network's logits at softmax temperature ``T``, for training only (the
    deployed model is the bare network, ``T = 1``)."""

    def __init__(self, net: nn.Module, temperature: float) -> None:
        super().__init__()
        self.net, self.temperature = net, _check_temperature(temperature)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.net(x)
        return logits / self.temperature


@torch.no_grad()
def soft_labels(model: nn.Module, x: Tensor, temperature: float, *,
                batch_size: int = 1024) -> Tensor:
    """The paper's soft labels ``F(X) = softmax(z(X) / T)``, ``(N, classes)``, in eval mode."""
    temperature = _check_temperature(temperature)
    with eval_mode(model):
        return torch.cat([F.softmax(model(x[i:i + batch_size]) / temperature, dim=1)
                          for i in range(0, x.shape[0], batch_size)])


def fit_soft_labels(model: nn.Module, x: Tensor, soft: Tensor,
                    val: tuple[Tensor, Tensor] | None = None, *, temperature: float,
                    epochs: int = 10, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
                    labels: Tensor | None = None, progress: bool = True) -> History:
    """Train ``model`` in place with Adam on soft targets at temperature ``T``: the cross-entropy
    ``-sum_i soft_i log softmax(z / T)_i`` (the paper's distillation objective).

    :func:`advlab.models.fit` with soft targets: ``val`` (hard labels) picks the best epoch by
    the cross-entropy at ``T``; ``labels`` (hard, optional) give the training accuracy, else
    the arg-max of ``soft``. ``seed`` seeds the shuffling.
    """
    if soft.shape[0] != x.shape[0] or soft.dim() != 2 or not soft.is_floating_point():
        raise ValueError(f"fit_soft_labels: soft must be float (N, classes) with N = "
                         f"{x.shape[0]}, got {tuple(soft.shape)} {soft.dtype}")
    hard = soft.argmax(1) if labels is None else labels
    check_training("fit_soft_labels", (x, hard), val, epochs, batch_size, lr)
    hot = AtTemperature(model, temperature)

    def step(batch: tuple[Tensor, ...], _t: int) -> tuple[Tensor, dict[str, Tensor]]:
        xb, soft_b, hard_b = batch
        logits = hot(xb)
        return F.cross_entropy(logits, soft_b), \
            {"train_accuracy": (logits.detach().argmax(1) == hard_b).sum()}

    def validate(m: nn.Module) -> dict[str, float]:
        assert val is not None
        with torch.no_grad(), eval_mode(m):
            v_logits = hot(val[0])
        return {"val_loss": float(F.cross_entropy(v_logits, val[1])),
                "val_accuracy": float((v_logits.argmax(1) == val[1]).float().mean())}

    return fit_loop(model, step, (x, soft, hard), optimizer=torch.optim.Adam(model.parameters(),
                    lr=lr), epochs=epochs, batch_size=batch_size, seed=seed,
                    validate=validate if val is not None else None,
                    monitor=("val_loss", "min") if val is not None else None,
                    progress=progress, desc="distill")


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"distillation: temperature must be a finite number > 0, got "
                         f"{temperature!r}")
    return float(temperature)

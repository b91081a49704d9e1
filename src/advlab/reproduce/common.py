"""What the reproduction experiments share: their data, the standard models (trained once per
process and seed, then reused by every image experiment), and scoring an attack over seeds.

Image experiments run on the embedded digits by default: 8×8 in ``--quick`` (a CNN trains in
seconds), upsampled to 28×28 otherwise (MNIST's size, so that L∞ budgets and L0 counts compare
with the papers'); ``--dataset mnist --mnist DIR`` runs them on MNIST itself.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from advlab.attacks import targets
from advlab.data import Dataset, load
from advlab.models import train_classifier
from advlab.reproduce.config import Config
from advlab.scoring import call_attack, score
from advlab.threat import ThreatModel

IMAGES = ("digits", "mnist")
SECURITY = ("nsl-kdd", "kddcup99")


@functools.lru_cache(maxsize=8)
def _load(name: str, path: str | None, options: tuple[tuple[str, Any], ...]) -> Dataset:
    return load(name, path, **dict(options))


def dataset(config: Config, name: str, **options: Any) -> Dataset:
    """Data set ``name`` (its path from ``config``), loaded once per process. Digits are 8×8 in
    ``--quick`` and 28×28 otherwise; MNIST keeps 2,000 training images in ``--quick``."""
    if name == "digits":
        options = {"upsample": not config.quick, **options}
    if name == "mnist" and config.quick:
        options = {"train_limit": 2000, **options}
    path = config.path(name)
    return _load(name, None if path is None else str(path), tuple(sorted(options.items())))


def test_rows(ds: Dataset, n: int, device: str) -> tuple[Tensor, Tensor]:
    """The first ``n`` test rows (all when there are fewer), on ``device``."""
    return ds.x_test[:n].to(device), ds.y_test[:n].to(device)


def image_inputs(config: Config, n_quick: int, n_full: int
                 ) -> tuple[Dataset, int, Tensor, Tensor]:
    """An image experiment's data set and its first ``n`` test images (``n_quick`` in
    --quick, ``n_full`` otherwise): ``(dataset, n, x, y)``."""
    ds = dataset(config, config.dataset)
    n = n_quick if config.quick else n_full
    x, y = test_rows(ds, n, config.device)
    return ds, n, x, y


def jsma_threat(ds: Dataset, gamma: float = 0.145) -> ThreatModel:
    """Papernot et al.'s L0 budget: ``gamma`` (14.5 %) of the input features."""
    return ThreatModel("l0", math.floor(gamma * math.prod(ds.input_shape)), ds.domain)


def random_targets(y: Tensor, num_classes: int, seed: int) -> Tensor:
    """One random target class per input (never its label), seeded."""
    return targets.random(y, num_classes, generator=torch.Generator().manual_seed(seed))


def image_epochs(config: Config) -> int:
    return 5 if config.quick else 10


@functools.lru_cache(maxsize=16)
def _standard(name: str, path: str | None, quick: bool, seed: int, device: str,
              architecture: str) -> nn.Module:
    config = Config(quick=quick, paths={name: path} if path else {}, device=device)
    ds = dataset(config, name)
    epochs = image_epochs(config) if architecture == "small_cnn" else (5 if quick else 10)
    trained = train_classifier(ds, architecture, epochs=epochs, lr=2e-3, batch_size=64,
                               val_fraction=0, seed=seed, device=device, progress=False)
    return trained.model.eval()


def standard_model(config: Config, name: str, seed: int, architecture: str = "") -> nn.Module:
    """The undefended model of data set ``name`` for ``seed``: ``small_cnn`` for images, an MLP
    otherwise (``train_classifier``, lr 2e-3, batch 64, 10 epochs, 5 in quick). Trained once
    per process and shared by the experiments; never modify it."""
    arch = architecture or ("small_cnn" if name in IMAGES else "mlp")
    path = config.path(name)
    return _standard(name, None if path is None else str(path), config.quick, seed,
                     config.device, arch)


def with_data(ds: Dataset, x: Tensor, y: Tensor) -> Dataset:
    """``ds`` with another training split (e.g. a poisoned one)."""
    return dataclasses.replace(ds, x_train=x, y_train=y)


def attack_score(model: nn.Module, x: Tensor, y: Tensor, threat: ThreatModel,
                 attack: Callable[..., Tensor], *, seed: int,
                 target: Tensor | None = None) -> dict[str, float]:
    """Run ``attack`` (through :func:`advlab.scoring.call_attack`, seeded) and score it: the
    :class:`~advlab.scoring.Score` summary plus ``success_on_correct`` (the success rate among
    the clean-correct inputs, the papers' usual denominator)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x_adv = call_attack(attack, model, x, y, threat, target=target, generator=generator)
    s = score(model, x, y, x_adv, threat, target)
    out = s.summary()
    correct = s.clean_correct
    out["success_on_correct"] = float(s.success[correct].float().mean()) if correct.any() \
        else float("nan")
    out["clean_accuracy"] = float(correct.float().mean())
    return out


def image_protocol(config: Config, name: str, n: int) -> str:
    """The data part of an image experiment's protocol line."""
    if name == "mnist":
        train = "2,000" if config.quick else "all"
        return f"MNIST ({train} training images), first {n} test images"
    size = "8×8" if config.quick else "28×28 (upsampled)"
    return f"digits {size} (1,347 train / 450 test), first {n} test images"


@functools.lru_cache(maxsize=16)
def _robust(name: str, path: str | None, quick: bool, seed: int, device: str, method: str,
            eps: float) -> nn.Module:
    from advlab.defenses.robust_classifier import train_robust_classifier

    config = Config(quick=quick, paths={name: path} if path else {}, device=device)
    ds = dataset(config, name)
    arch = "small_cnn" if name in IMAGES else "mlp"
    params: dict[str, Any] = {"epochs": image_epochs(config), "lr": 2e-3, "batch_size": 64,
                              "seed": seed, "eps_warmup": 2}
    if method == "fgsm-at":  # Wong et al. 2020: cyclic learning rate; 1.25 eps random-start step
        params.update(schedule="cyclic", lr=5e-3)
    trained = train_robust_classifier(ds, arch, ThreatModel("linf", eps, ds.domain),
                                      method=method, val_fraction=0.1, device=device,
                                      progress=False, **params)
    return trained.model.eval()


def robust_model(config: Config, name: str, seed: int, method: str = "pgd-at",
                 eps: float = 0.3) -> nn.Module:
    """An adversarially trained model (``train_robust_classifier``: ``method`` at L∞ ``eps``,
    the default inner attack (PGD-10; FGSM with random start), eps ramped up over 2 epochs,
    Adam lr 2e-3, batch 64, the epochs of
    :func:`image_epochs`, best robust-validation epoch on a 10 % split), trained once per
    process and shared (fgsm-at: cyclic learning rate peaking at 5e-3)."""
    path = config.path(name)
    return _robust(name, None if path is None else str(path), config.quick, seed,
                   config.device, method, eps)


def seeds_for_training(config: Config) -> list[int]:
    """Seeds of experiments that adversarially train: one in --quick (training dominates)."""
    return config.seed_list[:1] if config.quick else config.seed_list


@functools.lru_cache(maxsize=8)
def _distilled(name: str, path: str | None, quick: bool, seed: int, device: str,
               temperature: float) -> nn.Module:
    from advlab.defenses.distillation import distill

    config = Config(quick=quick, paths={name: path} if path else {}, device=device)
    epochs = 10 if quick else 30
    return distill(dataset(config, name), "small_cnn", temperature=temperature, epochs=epochs,
                   lr=2e-3, batch_size=64, seed=seed, device=device,
                   progress=False).model.eval()


def distilled_model(config: Config, name: str, seed: int,
                    temperature: float = 100.0) -> nn.Module:
    """Papernot et al.'s distilled ``small_cnn`` (teacher and student at ``temperature``, 30
    epochs each, 10 in --quick, deployed at T = 1), trained once per process and shared."""
    path = config.path(name)
    return _distilled(name, None if path is None else str(path), config.quick, seed,
                      config.device, temperature)


def two_classes(ds: Dataset, a: int, b: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The rows of classes ``a`` (label 0) and ``b`` (label 1), flattened: ``(x_train,
    y_train, x_test, y_test)`` (the digit pairs of Biggio et al.'s SVM experiments)."""
    out = []
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        keep = (y == a) | (y == b)
        out += [x[keep].flatten(1), (y[keep] == b).long()]
    return out[0], out[1], out[2], out[3]


def curve_stats(curve: dict[str, Any], metric: str) -> tuple[list[float], list[dict[str, Any]]]:
    """A poisoning curve's levels and the :func:`mean_std` of ``metric`` over seeds at each."""
    from advlab.reproduce.outcome import mean_std

    rows = curve["rows"]
    levels = sorted({float(r["level"]) for r in rows})
    return levels, [mean_std([r[metric] for r in rows if float(r["level"]) == lv])
                    for lv in levels]


def sample_rows(x: Tensor, y: Tensor, n: int, seed: int, device: str) -> tuple[Tensor, Tensor]:
    """``n`` rows drawn without replacement (all when fewer), seeded, on ``device``."""
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx].to(device), y[idx].to(device)


def security_protocol(config: Config, name: str, n: int) -> str:
    """The data part of a tabular experiment's protocol line."""
    train = {"nsl-kdd": "KDDTrain+ 20 %", "kddcup99": "KDD Cup 99 10 % (75 % split)",
             "tuandromd": "TUANDROMD (70 % split)"}.get(name, name)
    return f"{name}: MLP trained on {train}, {n} test rows"

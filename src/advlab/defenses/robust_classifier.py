"""Adversarial training packaged as a trained model: :func:`train_robust_classifier` (the
library side of ``advlab train --defense pgd-at|fgsm-at|trades``) and :func:`defense_record`,
the JSON description the model's sidecar keeps of how it was trained. The methods themselves
are in :mod:`advlab.defenses.adversarial_training`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from advlab.attacks.common import resolved_knobs
from advlab.data.base import Dataset
from advlab.defenses.adversarial_training import (
    AttackFn,
    Method,
    adversarial_train,
    check_arguments,
    default_attack,
)
from advlab.models.device import resolve_device
from advlab.models.training import (
    TrainedModel,
    accuracy,
    new_model,
    split_validation,
    zoo_arguments,
)
from advlab.threat import ThreatModel

PAPERS = {"pgd-at": "Madry et al., ICLR 2018, arXiv:1706.06083",
          "fgsm-at": "Wong, Rice, Kolter, ICLR 2020, arXiv:2001.03994",
          "trades": "Zhang et al., ICML 2019, arXiv:1901.08573"}


def train_robust_classifier(dataset: Dataset, architecture: str, threat: ThreatModel, *,
                            method: Method = "pgd-at", hidden: tuple[int, ...] | None = None,
                            val_fraction: float = 0.1, device: str | torch.device = "cpu",
                            progress: bool = True, checkpoint: str | Path | None = None,
                            resume: bool = False, **params: Any) -> TrainedModel:
    """:func:`advlab.models.train_classifier` with :func:`adversarial_train` (``params`` are its
    keywords); a seeded stratified ``val_fraction`` selects the best robust epoch. The
    :class:`TrainedModel`'s ``settings`` carry the sidecar's record (:func:`defense_record`).
    ``checkpoint`` and ``resume``: a folder for a checkpoint after every epoch, and whether to
    continue from it; under torchrun the training is data-parallel."""
    seed = int(params.get("seed", 0))
    device = resolve_device(device)
    arguments = zoo_arguments(dataset, architecture, hidden)
    model = new_model(architecture, arguments, seed=seed, device=device)
    train_split, val = split_validation(dataset, val_fraction, seed=seed, device=device)
    history = adversarial_train(model, train_split, threat, method=method, val=val,
                                progress=progress, checkpoint=checkpoint, resume=resume,
                                **params)
    metrics = {"test_accuracy": accuracy(model, dataset.x_test.to(device),
                                         dataset.y_test.to(device))}
    settings = {**params, "val_fraction": val_fraction,
                "defense": defense_record(method, threat, val_fraction=val_fraction, **params)}
    return TrainedModel(model.eval(), architecture, arguments, history, metrics, settings)


def defense_record(method: Method, threat: ThreatModel, **params: Any) -> dict[str, Any]:
    """A JSON-serialisable description of an adversarial-training run, for the model sidecar
    (``models.io.save(..., defense=defense_record(...))``).

    ``params`` are :func:`adversarial_train`'s keywords as passed (``attack``, ``epochs``,
    ``lr``, ``seed``, ...); the attack becomes ``{"name", knobs...}`` with its resolved
    ``step_size`` when it is a default, ``beta`` is kept for TRADES and ``mix`` for the others.
    """
    check_arguments(method, threat, float(params.get("beta", 6.0)),
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


def _describe_attack(attack: AttackFn, threat: ThreatModel) -> dict[str, Any]:
    return {k: v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)
            for k, v in resolved_knobs(attack, threat.eps).items()}

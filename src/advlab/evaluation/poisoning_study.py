"""The poisoning experiments behind `advlab poison`, as library functions returning JSON data.

* :func:`svm_poisoning_study`: label flipping (random or adversarial, Biggio, Nelson, Laskov,
  ACML 2011; Xiao et al. 2012) or SVM data injection (Biggio, Nelson, Laskov, ICML 2012) on a
  two-class subset, against a scikit-learn ``SVC``; the curve is its test error against the flip
  rate or the number of injected points, over seeds.
* :func:`backdoor_study`: a BadNets-style backdoor (Gu, Dolan-Gavitt, Garg, 2017): a zoo model
  trained on the clean and on the poisoned set, clean accuracy and backdoor success, and
  optionally activation clustering (Chen et al. 2019) to filter the set before retraining.

Each returns ``(summary, poisoned)``: the summary is the ``advlab.poisoning/1`` data the report
renders (:mod:`advlab.report.poisoning`), ``poisoned`` the first seed's :class:`Poisoned` set.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import Tensor

from advlab.data.base import Dataset
from advlab.defenses import activation_clustering
from advlab.evaluation.poisoning import PoisoningCurve, accuracy, backdoor_success, poisoning_curve
from advlab.models.training import train_classifier
from advlab.poisoning import (
    Poisoned,
    adversarial_label_flip,
    backdoor,
    random_label_flip,
    svm_injection,
)


def svm_poisoning_study(x_all: Tensor, y_all: Tensor, x_test: Tensor, y_test: Tensor, *,
                        attack: Literal["label-flip", "svm-injection"],
                        mode: Literal["random", "adversarial"] = "adversarial",
                        kernel: Literal["linear", "rbf"] = "linear", n_train: int = 200,
                        n_val: int = 500, rate: float = 0.05, points: int = 5, seed: int = 0,
                        seeds: int = 1, progress: bool = True,
                        log: Any = None) -> tuple[dict[str, Any], Poisoned]:
    """Poison ``n_train`` rows of a two-class set ``(x_all, y_all)`` (the attacker validates on
    ``n_val`` more) and measure the SVC's test error on ``(x_test, y_test)``, for seeds
    ``seed .. seed + seeds - 1``; ``log`` (optional) is called with one line per seed."""
    from sklearn.svm import SVC

    if n_train + n_val > x_all.shape[0]:
        raise ValueError(f"svm_poisoning_study: n_train + n_val = {n_train + n_val} but the two "
                         f"classes have {x_all.shape[0]} training rows")
    curve, first = None, None
    for s in range(seed, seed + seeds):
        order = torch.randperm(x_all.shape[0], generator=torch.Generator().manual_seed(s))
        tr, va = order[:n_train], order[n_train:n_train + n_val]
        x, y, xv, yv = x_all[tr], y_all[tr], x_all[va], y_all[va]

        def train(xs: Tensor, ys: Tensor, _seed: int) -> Any:
            return SVC(kernel=kernel).fit(xs.double().numpy(), ys.numpy())

        def measure(model: Any) -> dict[str, float]:
            return {"test_error": 1.0 - accuracy(model, x_test, y_test)}

        if attack == "label-flip":
            flip = random_label_flip if mode == "random" else adversarial_label_flip
            kw = {} if mode == "random" else {"x_val": xv, "y_val": yv, "progress": progress}
            levels = sorted({rate / 4, rate / 2, rate})
            part = poisoning_curve(
                lambda r, g, x=x, y=y, kw=kw, flip=flip: flip(x, y, r, generator=g, **kw),
                train, measure, levels, x=x, y=y, seeds=(s,))
            poisoned = flip(x, y, rate, generator=torch.Generator().manual_seed(s), **kw)
        else:
            poisoned = svm_injection(x, y, x_val=xv, y_val=yv, n_points=points, kernel=kernel,
                                     progress=progress,
                                     generator=torch.Generator().manual_seed(s))
            part = PoisoningCurve("points")
            for k in range(points + 1):  # the injection is sequential: prefixes
                part.rows.append({"level": float(k), "seed": s, "n_poisoned": k,
                                  **measure(train(poisoned.x[:x.shape[0] + k],
                                                  poisoned.y[:x.shape[0] + k], s))})
        if curve is None:
            curve, first = part, (poisoned, x)
        else:
            curve.rows.extend(part.rows)
        if log is not None:
            log(f"seed {s}: test error {[round(r['test_error'], 4) for r in part.rows]}")
    assert curve is not None and first is not None
    poisoned, x = first
    errors = curve.median("test_error")
    metrics = {"n_poisoned": poisoned.n_poisoned, "n_train": int(x.shape[0]),
               "clean_accuracy": 1 - errors[0], "poisoned_accuracy": 1 - errors[-1],
               "clean_test_error": errors[0], "poisoned_test_error": errors[-1]}
    return ({"learner": f"SVC ({kernel})", "metrics": metrics, "curve": curve.to_dict(),
             "poisoning_info": poisoned.info}, poisoned)


def backdoor_study(dataset: Dataset, trigger: Any, target: int, *, rate: float = 0.05,
                   architecture: str | None = None, epochs: int = 10, lr: float = 2e-3,
                   defense: Literal["none", "activation-clustering"] = "none", seed: int = 0,
                   progress: bool = True, log: Any = None) -> tuple[dict[str, Any], Poisoned]:
    """Backdoor ``rate`` of ``dataset``'s training split with ``trigger`` towards ``target``,
    train a zoo model (default ``small_cnn`` for images, ``mlp`` otherwise) on the clean and on
    the poisoned set, and measure test accuracy and backdoor success (and, with ``defense``,
    the same after activation clustering filtered the set)."""
    ds = dataset
    if not 0 <= target < ds.num_classes:
        raise ValueError(f"backdoor_study: target must be a class in [0, {ds.num_classes}), "
                         f"got {target}")
    arch = architecture or ("small_cnn" if len(ds.input_shape) == 3 else "mlp")
    poisoned = backdoor(ds.x_train, ds.y_train, trigger, target, rate, domain=ds.domain,
                        generator=torch.Generator().manual_seed(seed))

    def train(x: Tensor, y: Tensor) -> Any:
        if log is not None:
            log(f"training {arch} on {x.shape[0]} rows ...")
        return train_classifier(dataclasses.replace(ds, x_train=x, y_train=y), arch,
                                epochs=epochs, lr=lr, batch_size=64, seed=seed, val_fraction=0,
                                progress=progress).model

    def measure(model: Any) -> dict[str, float]:
        return {"test_accuracy": accuracy(model, ds.x_test, ds.y_test),
                "backdoor_success": backdoor_success(model, ds.x_test, ds.y_test, trigger,
                                                     target)}

    clean = measure(train(ds.x_train, ds.y_train))
    model = train(poisoned.x, poisoned.y)
    bad = measure(model)
    metrics: dict[str, Any] = {
        "n_poisoned": poisoned.n_poisoned, "n_train": int(ds.x_train.shape[0]),
        "clean_accuracy": clean["test_accuracy"], "poisoned_accuracy": bad["test_accuracy"],
        "backdoor_success": bad["backdoor_success"],
        "clean_model_backdoor_success": clean["backdoor_success"]}
    rows = [{"level": 0.0, "seed": seed, "n_poisoned": 0, **clean},
            {"level": float(rate), "seed": seed, "n_poisoned": poisoned.n_poisoned,
             **bad}]
    curve = PoisoningCurve("rate", rows)
    summary: dict[str, Any] = {"learner": arch, "metrics": metrics, "curve": curve.to_dict(),
                               "trigger": repr(trigger)}
    if defense == "activation-clustering":
        f = activation_clustering(model, poisoned.x, poisoned.y, seed=seed)
        after = measure(train(poisoned.x[f.kept], poisoned.y[f.kept]))
        metrics["defended_backdoor_success"] = after["backdoor_success"]
        summary["defense"] = {"method": "activation clustering", **f.metrics(poisoned.indices),
                              "accuracy_after": after["test_accuracy"],
                              "backdoor_success_after": after["backdoor_success"]}
    if len(ds.input_shape) == 3:
        idx = poisoned.indices[:8]
        summary["examples"] = {"shape": list(ds.input_shape),
                               "clean": ds.x_train[idx].flatten(1).tolist(),
                               "triggered": poisoned.x[idx].flatten(1).tolist()}
    return summary, poisoned

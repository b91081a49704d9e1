"""Explain a sample of a data set with one method: the library work behind `advlab explain`.

:func:`explain_samples` draws ``n`` samples (seeded), runs one attribution method of
:mod:`advlab.explain.attributions` or DALEX permutation importance (:mod:`.permutation`), and
returns plain JSON data: a ranking of features (one-hot groups summed into their original
feature) for tabular data, the first maps for images. :mod:`advlab.report.explanations` draws
and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from advlab.data.base import Dataset
from advlab.explain import attributions as xai
from advlab.explain.permutation import feature_groups, model_parts

METHODS = ("saliency", "abs-saliency", "input-x-gradient", "integrated-gradients", "grad-cam",
           "shap", "gradient-shap", "deeplift-shap", "permutation")
SIGNED = ("saliency", "input-x-gradient", "integrated-gradients", "shap", "gradient-shap",
          "deeplift-shap")
MAPS_SHOWN = 6


def explain_samples(model: nn.Module, dataset: Dataset, method: str, *, split: str = "test",
                    n: int = 200, target: Literal["predicted", "label"] | int = "predicted",
                    steps: int = 32, samples: int = 25, background: int = 100,
                    permutations: int = 10, loss: str = "cross_entropy", seed: int = 0,
                    device: str | torch.device = "cpu") -> dict[str, Any]:
    """Explain ``n`` seeded samples of ``dataset``'s ``split`` with ``method`` (:data:`METHODS`).

    ``target`` is the class explained: the prediction, the true label, or a class index;
    ``steps`` (integrated gradients), ``samples`` (SHAP permutations or GradientSHAP draws),
    ``background`` (SHAP reference rows from the training split), ``permutations`` and ``loss``
    (permutation importance) are the methods' knobs.

    Returns:
        ``{"method", "dataset", "split", "n", "target", "seed", ...}`` with ``"importance"``
        (permutation), ``"ranking"`` (tabular attributions: ``name, importance, std``) or
        ``"images"``/``"maps"``/``"labels"`` (the first image attributions).
    """
    if method not in METHODS:
        raise ValueError(f"explain: unknown method {method!r}; known: {', '.join(METHODS)}")
    if n < 2 or steps < 1 or samples < 1 or background < 2 or permutations < 1:
        raise ValueError("explain: need n >= 2, steps >= 1, samples >= 1, background >= 2 and "
                         "permutations >= 1")
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = dataset.test if split == "test" else dataset.train
    idx = torch.randperm(len(y_all), generator=gen)[:n]
    x, y = x_all[idx].to(device), y_all[idx].to(device)
    refs = dataset.x_train[torch.randperm(len(dataset.x_train), generator=gen)
                           [:background]].to(device)
    chosen = _target(target, y, dataset.num_classes)
    image = x.dim() == 4
    groups, names = (None, None) if image else \
        feature_groups(dataset.feature_names, dataset.domain.one_hot_groups)
    out: dict[str, Any] = {"method": method, "dataset": dataset.name, "split": split,
                           "n": len(y), "target": target, "seed": seed}
    if method == "permutation":
        imp = model_parts(model, x, y, loss=loss, groups=groups, names=names,  # type: ignore[arg-type]
                          permutations=permutations, generator=gen)
        out["importance"] = imp.as_dict()
        out.update(loss=loss, permutations=permutations)
        return out
    maps = _attribute(method, model, x, chosen, refs, groups, gen, steps=steps, samples=samples)
    out["shape"] = list(maps.shape)
    if image:
        shown = min(MAPS_SHOWN, len(y))
        out["images"] = x[:shown].cpu().tolist()
        out["maps"] = maps[:shown].detach().cpu().tolist()
        out["labels"] = y[:shown].tolist()
        out["signed"] = method in SIGNED
    else:
        out["ranking"] = attribution_ranking(maps, groups, names,
                                             average_groups=method == "shap")
    return out


def attribution_ranking(attributions: Tensor, groups: Sequence[Sequence[int]] | None,
                        names: Sequence[str] | None, *,
                        average_groups: bool = False) -> list[dict[str, Any]]:
    """Features by mean |attribution| over the samples, largest first (stable on ties), each
    ``{"name", "importance", "std"}``. A group's attribution is the sum over its columns
    (the mean, when each column already carries the group's value, as with grouped SHAP)."""
    flat = attributions.flatten(1).abs()
    cols = [list(g) for g in groups] if groups is not None else [[c] for c in
                                                                 range(flat.shape[1])]
    stacked = torch.stack([flat[:, g].sum(1) / (len(g) if average_groups else 1) for g in cols],
                          1)
    mean, std = stacked.mean(0), stacked.std(0)
    labels = list(names) if names is not None else [str(c) for c in range(flat.shape[1])]
    return [{"name": labels[i], "importance": float(mean[i]), "std": float(std[i])}
            for i in torch.sort(-mean, stable=True).indices.tolist()]


def _target(target: Literal["predicted", "label"] | int, y: Tensor, classes: int
            ) -> Tensor | int | None:
    if target == "predicted":
        return None
    if target == "label":
        return y
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes:
        raise ValueError(f"explain: target must be 'predicted', 'label' or a class index in "
                         f"[0, {classes}), got {target!r}")
    return target


def _attribute(method: str, model: nn.Module, x: Tensor, target: Tensor | int | None,
               background: Tensor, groups: Sequence[Sequence[int]] | None,
               gen: torch.Generator, *, steps: int, samples: int) -> Tensor:
    if method in ("saliency", "abs-saliency", "input-x-gradient"):
        mode = {"saliency": "gradient", "abs-saliency": "abs"}.get(method, "input_x_gradient")
        return xai.saliency(model, x, target, mode=mode)  # type: ignore[arg-type]
    if method == "integrated-gradients":
        return xai.integrated_gradients(model, x, target, steps=steps)
    if method == "grad-cam":
        if x.dim() != 4:
            raise ValueError("explain: grad-cam needs an image model (small_cnn); use saliency "
                             "or shap for tabular data")
        return xai.grad_cam(model, x, target)
    if method == "shap":
        return xai.shapley_sampling(model, x, target, background=background, n_samples=samples,
                                    groups=groups, generator=gen)
    if method == "gradient-shap":
        return xai.gradient_shap(model, x, target, background=background, n_samples=samples,
                                 generator=gen)
    return xai.deeplift_shap(model, x, target, background=background[:32])

"""Tree ensembles as advlab models: training, and a gradient-free ``nn.Module`` wrapper.

:func:`train_trees` fits an XGBoost, LightGBM or scikit-learn random forest on a
:class:`~advlab.data.Dataset`'s tensors as they are (min-max scaled, so the data set's Domain
applies unchanged) and returns a :class:`TreeModel`. The wrapper holds the library's own
estimator, which computes every forward pass (the deployed model, not a re-implementation), and
the parsed :class:`~advlab.trees.ensemble.TreeEnsemble` that the white-box tree attacks, the
verifier and the model card read.

The wrapper is a black box to autograd: it has no parameters and no gradient. Its forward takes
a float tensor on any device, computes on the CPU and returns float logits on ``x.device``. A
forward on an input that requires a gradient raises :class:`NoGradientError` naming the
black-box attacks to use instead (``hopskipjump``, ``square``, a transfer attack, or the tree
attacks of :mod:`advlab.trees`).
"""

from __future__ import annotations

import time
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from advlab.trees.ensemble import TreeEnsemble

TreeKind = Literal["xgboost", "lightgbm", "random-forest"]
TREE_KINDS: tuple[TreeKind, ...] = get_args(TreeKind)
DEFAULTS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.3},
    "lightgbm": {"n_estimators": 100, "num_leaves": 31, "learning_rate": 0.1},
    "random-forest": {"n_estimators": 100, "max_depth": None},
}
_PROBE_ROWS = 256


class NoGradientError(RuntimeError):
    """A gradient was asked of a tree ensemble, which has none."""


class TreeModel(nn.Module):
    """A trained tree ensemble behind the model interface advlab's attacks expect.

    Args:
        kind: ``"xgboost"``, ``"lightgbm"`` or ``"random-forest"``.
        estimator: the library object (``xgboost.Booster``, ``lightgbm.Booster`` or a fitted
            ``sklearn.ensemble.RandomForestClassifier``); ``None`` for an ensemble built by
            hand, whose own traversal then computes the forward pass.
        ensemble: its parsed :class:`TreeEnsemble`.
    """

    def __init__(self, kind: TreeKind, estimator: Any, ensemble: TreeEnsemble) -> None:
        super().__init__()
        if kind not in TREE_KINDS:
            raise ValueError(f"TreeModel: kind must be one of {TREE_KINDS}, got {kind!r}")
        self.kind, self.estimator, self.ensemble = kind, estimator, ensemble
        self.eval()

    @property
    def num_classes(self) -> int:
        return self.ensemble.n_classes

    def extra_repr(self) -> str:
        e = self.ensemble
        return f"kind={self.kind!r}, trees={e.n_trees}, classes={e.n_classes}"

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise NoGradientError(
                f"{self.kind} model: a tree ensemble has no gradient; use a black-box attack "
                "(hopskipjump, square, a transfer or substitute attack) or the tree attacks "
                "of advlab.trees (kantchelian_milp, greedy_evasion)")
        if x.dim() < 2 or x[0].numel() != self.ensemble.n_features:
            raise ValueError(f"{self.kind} model: expected inputs (N, *D) with "
                             f"{self.ensemble.n_features} features, got shape {tuple(x.shape)}")
        rows = x.detach().reshape(x.shape[0], -1).to("cpu", torch.float32).numpy()
        logits = (self.ensemble.logits(rows).astype(np.float32) if self.estimator is None else
                  library_logits(self.kind, self.estimator, rows, self.num_classes))
        return torch.from_numpy(logits).to(device=x.device, dtype=x.dtype
                                           if x.is_floating_point() else torch.float32)


def library_logits(kind: str, estimator: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """float32 ``(N, C)`` logits from the library's own prediction (see
    :mod:`advlab.trees.ensemble` for the convention)."""
    if x.shape[0] == 0:
        return np.zeros((0, n_classes), dtype=np.float32)
    if kind == "random-forest":
        proba = estimator.predict_proba(x)
        return np.log(np.maximum(proba, 1e-12)).astype(np.float32)
    if kind == "xgboost":
        raw = estimator.inplace_predict(x, predict_type="margin")
    else:
        raw = estimator.predict(x, raw_score=True, num_threads=1)
    raw = np.asarray(raw, dtype=np.float64)
    if n_classes == 2:
        m = raw.reshape(-1)
        return np.stack([-m / 2, m / 2], axis=1).astype(np.float32)
    return raw.reshape(x.shape[0], n_classes).astype(np.float32)


def parse(kind: str, estimator: Any, n_classes: int, n_features: int,
          probe: np.ndarray) -> TreeEnsemble:
    """The :class:`TreeEnsemble` of a library estimator, checked on ``probe`` rows."""
    from advlab.trees import parse as parsers

    probe = np.ascontiguousarray(probe, dtype=np.float32)
    if kind == "xgboost":
        return parsers.from_xgboost(estimator, n_classes, n_features, probe)
    if kind == "lightgbm":
        return parsers.from_lightgbm(estimator, n_classes, n_features, probe)
    return parsers.from_sklearn(estimator, n_features, probe)


def fit_estimator(kind: str, x: np.ndarray, y: np.ndarray, n_classes: int, *,
                  params: dict[str, Any], seed: int) -> Any:
    """Fit the library's estimator on ``(x, y)`` (float32, int64) with ``params``; one thread,
    so that results are reproducible and the shared CPU is not oversubscribed."""
    if kind == "xgboost":
        import xgboost

        p = {"max_depth": params["max_depth"], "eta": params["learning_rate"], "seed": seed,
             "nthread": 1, "tree_method": "hist",
             **({"objective": "binary:logistic"} if n_classes == 2 else
                {"objective": "multi:softprob", "num_class": n_classes})}
        return xgboost.train(p, xgboost.DMatrix(x, label=y), params["n_estimators"])
    if kind == "lightgbm":
        import lightgbm

        p = {"num_leaves": params["num_leaves"], "learning_rate": params["learning_rate"],
             "seed": seed, "num_threads": 1, "verbose": -1, "deterministic": True,
             **({"max_depth": params["max_depth"]} if params.get("max_depth") else {}),
             **({"objective": "binary"} if n_classes == 2 else
                {"objective": "multiclass", "num_class": n_classes})}
        return lightgbm.train(p, lightgbm.Dataset(x, label=y), params["n_estimators"])
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=params["n_estimators"],
                                    max_depth=params["max_depth"], random_state=seed, n_jobs=1)
    return forest.fit(x, y)


def train_trees(dataset: Any, kind: TreeKind, *, n_estimators: int | None = None,
                max_depth: int | None = None, seed: int = 0, x: Tensor | None = None,
                y: Tensor | None = None, **params: Any) -> tuple[TreeModel, dict[str, Any]]:
    """Fit a tree ensemble on ``dataset``'s training split (or on ``x, y`` when given: a
    poisoned or augmented set) and measure its test accuracy.

    Args:
        kind: ``"xgboost"``, ``"lightgbm"`` or ``"random-forest"``.
        n_estimators, max_depth: trees and depth (defaults in :data:`DEFAULTS`; LightGBM grows
            ``num_leaves=31`` leaf-wise and caps the depth only when ``max_depth`` is given).
        params: other defaults to override (``learning_rate``, ``num_leaves``).

    Returns:
        ``(model, record)``; ``record`` holds the settings, the seconds and ``test_accuracy``.
    """
    if kind not in TREE_KINDS:
        raise ValueError(f"train_trees: kind must be one of {TREE_KINDS}, got {kind!r}")
    unknown = sorted(set(params) - set(DEFAULTS[kind]))
    if unknown:
        raise ValueError(f"train_trees: unknown parameter(s) {unknown} for {kind}; known: "
                         f"n_estimators, max_depth, {', '.join(sorted(DEFAULTS[kind]))}")
    settings = {**DEFAULTS[kind], **params}
    if n_estimators is not None:
        settings["n_estimators"] = n_estimators
    if max_depth is not None or kind == "lightgbm":
        settings["max_depth"] = max_depth
    if x is None or y is None:
        x, y = dataset.x_train, dataset.y_train
    xs, ys = _numpy(x), y.cpu().numpy().astype(np.int64)
    start = time.perf_counter()
    estimator = fit_estimator(kind, xs, ys, dataset.num_classes, params=settings, seed=seed)
    seconds = time.perf_counter() - start
    ensemble = parse(kind, estimator, dataset.num_classes, xs.shape[1], xs[:_PROBE_ROWS])
    model = TreeModel(kind, estimator, ensemble)
    with torch.no_grad():
        pred = model(dataset.x_test).argmax(1)
    accuracy = float((pred == dataset.y_test).float().mean())
    return model, {"params": settings, "seed": seed, "seconds": round(seconds, 3),
                   "test_accuracy": accuracy}


def _numpy(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().reshape(x.shape[0], -1).numpy(),
                                dtype=np.float32)

"""Safe files for tree ensembles: each library's own format, the sidecar of every advlab model.

A tree model folder holds one model file and ``advlab.json`` (:mod:`advlab.models.io`):

* XGBoost: ``model.xgb.json``, XGBoost's JSON model (``Booster.save_model``);
* LightGBM: ``model.lgb.txt``, LightGBM's text model;
* scikit-learn: ``model.skops``, the skops format (a zip of JSON and numpy arrays, no pickle),
  loaded only when every type it names is one a random forest needs (skops' trusted-types
  check against :data:`TRUSTED_SKLEARN`).

Nothing is ever unpickled. A pickle renamed to one of these names is recognised by its first
byte (protocol 2+ pickles start with ``0x80``; skops files are zips, XGBoost JSON starts with
``{``, LightGBM text with ``tree``) and refused with :class:`~advlab.models.io.ModelFileError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from advlab.models.io import SIDECAR, ModelFileError, write_sidecar
from advlab.trees.model import TREE_KINDS, TreeModel, parse

MODEL_FILES = {"xgboost": "model.xgb.json", "lightgbm": "model.lgb.txt",
               "random-forest": "model.skops"}
TRUSTED_SKLEARN = ("sklearn.ensemble._forest.RandomForestClassifier",
                   "sklearn.tree._classes.DecisionTreeClassifier", "sklearn.tree._tree.Tree")
_MAGIC = {"xgboost": (b"{",), "lightgbm": (b"tree",), "random-forest": (b"PK\x03\x04",)}
_PROBE_ROWS = 256


def save_trees(model: TreeModel, folder: str | Path, *, probe: torch.Tensor,
               feature_names: tuple[str, ...] | list[str] | None = None,
               **metadata: Any) -> Path:
    """Write ``model``'s library file and sidecar into ``folder`` (created if needed).

    ``probe``: input rows (e.g. the training rows); the first 256 go to ``probe.npy`` (a plain
    numpy array, read with ``allow_pickle=False``), on which the parse is checked against the
    library at every load. ``feature_names`` name the features of the model card.
    ``metadata``: JSON-serialisable extras (``dataset``, ``class_names``, ``metrics``...).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILES[model.kind]
    if model.kind == "random-forest":
        import skops.io

        skops.io.dump(model.estimator, path)
    else:
        model.estimator.save_model(str(path))
    arguments = {"n_classes": model.num_classes, "n_features": model.ensemble.n_features}
    probe_rows = np.ascontiguousarray(probe[:_PROBE_ROWS].detach().cpu().reshape(
        min(len(probe), _PROBE_ROWS), -1).numpy(), dtype=np.float32)
    np.save(folder / "probe.npy", probe_rows, allow_pickle=False)
    return write_sidecar(folder, architecture=model.kind, arguments=arguments,
                         model_file=path.name, trees=model.ensemble.card(feature_names),
                         **metadata)


def load_trees(folder: str | Path, sidecar: dict[str, Any], *,
               device: str | torch.device = "cpu") -> tuple[TreeModel, dict[str, Any]]:
    """Rebuild a tree model from its folder; ``(model, sidecar)`` like
    :func:`advlab.models.io.load` (``device`` is accepted for symmetry: trees run on the CPU
    and return logits on the input's device)."""
    folder = Path(folder)
    kind = sidecar["architecture"]
    if kind not in TREE_KINDS:
        raise ModelFileError(folder / SIDECAR, None,
                             f"architecture {kind!r} is not a tree ensemble")
    path = folder / MODEL_FILES[kind]
    args = sidecar["arguments"]
    try:
        n_classes, n_features = int(args["n_classes"]), int(args["n_features"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(folder / SIDECAR, None, f"arguments must hold n_classes and "
                             f"n_features, got {args!r}") from None
    check_not_pickle(path, kind)
    estimator = _read(path, kind)
    probe_file = folder / "probe.npy"
    if not probe_file.is_file():
        raise ModelFileError(probe_file, None, "missing (the rows the parse is checked on)")
    try:
        probe = np.load(probe_file, allow_pickle=False)
    except ValueError as err:
        raise ModelFileError(probe_file, None, f"not a plain numpy array ({err})") from None
    if probe.ndim != 2 or probe.shape[1] != n_features:
        raise ModelFileError(probe_file, None, f"shape {probe.shape}, expected (n, {n_features})")
    ensemble = parse(kind, estimator, n_classes, n_features, probe)
    return TreeModel(kind, estimator, ensemble), sidecar


def check_not_pickle(path: Path, kind: str) -> None:
    """Refuse anything but the library's own format, naming a pickle when it is one."""
    if not path.is_file():
        raise ModelFileError(path, None, "model file not found")
    with path.open("rb") as f:
        head = f.read(8)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise ModelFileError(path, None, f"this is a Python pickle, not a {kind} model file; "
                             "advlab never unpickles (loading a pickle runs arbitrary code). "
                             "Save the model in its library's own format (advlab train does)")
    if not any(head.lstrip()[:len(m)] == m for m in _MAGIC[kind]):
        raise ModelFileError(path, None, f"not a {kind} model file (starts with {head!r})")


def _read(path: Path, kind: str) -> Any:
    try:
        if kind == "xgboost":
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(str(path))
            booster.set_param({"nthread": 1})
            return booster
        if kind == "lightgbm":
            import lightgbm

            return lightgbm.Booster(model_file=str(path))
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
    except ImportError as err:
        raise ModelFileError(path, None, f"the {kind} library is not installed ({err}); "
                             "pip install 'advlab[trees]'") from None
    except Exception as err:  # noqa: BLE001 - any library failure means: not a valid file
        raise ModelFileError(path, None, f"not a valid {kind} model file ({err})") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_SKLEARN))
    if unexpected:
        raise ModelFileError(path, None, f"the skops file names types outside the trusted list "
                             f"{list(TRUSTED_SKLEARN)}: {unexpected}; refused")
    forest = skops.io.load(path, trusted=list(untrusted))
    if type(forest).__name__ not in ("RandomForestClassifier", "DecisionTreeClassifier"):
        raise ModelFileError(path, None, f"holds a {type(forest).__name__}, not a forest")
    forest.n_jobs = 1
    return forest


def train_and_save(dataset: Any, kind: str, out: str | Path, *, n_estimators: int | None,
                   max_depth: int | None, seed: int,
                   dataset_record: dict[str, Any]) -> dict[str, Any]:
    """:func:`~advlab.trees.model.train_trees`, then :func:`save_trees` into ``out`` with the
    sidecar of every advlab model (``advlab train --model xgboost|lightgbm|random-forest``).
    Returns the JSON summary of the command."""
    from advlab.trees.model import train_trees

    model, record = train_trees(dataset, kind, n_estimators=n_estimators,  # type: ignore[arg-type]
                                max_depth=max_depth, seed=seed)
    save_trees(model, out, probe=dataset.x_train, feature_names=dataset.feature_names,
               dataset=dataset_record,
               class_names=list(dataset.class_names),
               metrics={"test_accuracy": record["test_accuracy"]}, seed=seed,
               training=record)
    return {"dataset": dataset.name, "model": kind, "out": str(out),
            "test_accuracy": round(record["test_accuracy"], 6), "seconds": record["seconds"],
            "seed": seed, "trees": model.ensemble.card(dataset.feature_names)}

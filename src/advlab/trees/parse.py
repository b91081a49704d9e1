"""Parsers: a trained XGBoost, LightGBM or scikit-learn ensemble into one :class:`TreeEnsemble`.

One parser per library, one representation (:mod:`advlab.trees.ensemble`). Each reads the
library's own model description (XGBoost's JSON model, LightGBM's ``dump_model``, scikit-learn's
``tree_`` arrays), normalises every split to "left iff ``x < t``" on float32 values, and then
calibrates the bias against the library's own raw predictions on probe rows: the bias is whatever
makes the parsed scores equal the library's, and a parse whose scores still differ row by row is
refused (:class:`ParseError`) rather than attacked.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from advlab.trees.ensemble import LEAF, TreeEnsemble, concatenate

_ATOL = 1e-4  # parsed scores must match the library's to this (float32 margins, summed)


class ParseError(ValueError):
    """A model the parser cannot represent exactly (the message says what and where)."""


def below_or_equal(threshold: np.ndarray) -> np.ndarray:
    """float32 thresholds ``t'`` with ``x <= t  ⇔  x < t'`` for every float32 ``x``."""
    t = np.asarray(threshold, dtype=np.float64)
    t32 = t.astype(np.float32)
    t32 = np.where(t32.astype(np.float64) > t, np.nextafter(t32, np.float32(-np.inf)), t32)
    return np.nextafter(t32, np.float32(np.inf)).astype(np.float32)


# ---------------------------------------------------------------------------------- XGBoost
def from_xgboost(booster: Any, n_classes: int, n_features: int,
                 probe: np.ndarray) -> TreeEnsemble:
    """Parse an ``xgboost.Booster`` (``gbtree``, one output per tree) from its JSON model."""
    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    gb = model["learner"]["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise ParseError(f"xgboost: only the gbtree booster is supported, got {gb.get('name')!r}")
    trees_json, info = gb["model"]["trees"], gb["model"]["tree_info"]
    trees = []
    for k, tree in enumerate(trees_json):
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        cond = np.asarray(tree["split_conditions"], dtype=np.float32)
        if int(tree.get("tree_param", {}).get("size_leaf_vector", "1") or 1) > 1:
            raise ParseError(f"xgboost: tree {k} has vector leaves (multi_output_tree)")
        leaf = left < 0
        feature = np.where(leaf, LEAF, np.asarray(tree["split_indices"], dtype=np.int64))
        if "categories_nodes" in tree and len(tree["categories_nodes"]):
            raise ParseError(f"xgboost: tree {k} has categorical splits")
        trees.append({"feature": feature, "threshold": np.where(leaf, 0, cond), "left": left,
                      "right": right, "value": _class_values(np.where(leaf, cond, 0.0),
                                                             int(info[k]), n_classes)})
    ensemble = concatenate(trees, bias=np.zeros(n_classes), link="identity",
                           n_features=n_features, library="xgboost")
    import xgboost

    margin = booster.predict(xgboost.DMatrix(probe), output_margin=True)
    return calibrated(ensemble, _as_logits(np.asarray(margin, dtype=np.float64), n_classes),
                      probe)


# ---------------------------------------------------------------------------------- LightGBM
def from_lightgbm(booster: Any, n_classes: int, n_features: int,
                  probe: np.ndarray) -> TreeEnsemble:
    """Parse a ``lightgbm.Booster`` (numerical splits) from ``dump_model()``."""
    dump = booster.dump_model()
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    trees = []
    for k, info in enumerate(dump["tree_info"]):
        feature, threshold, left, right, leaf_value = [], [], [], [], []
        stack = [(info["tree_structure"], -1, "")]
        while stack:
            node, parent, side = stack.pop()
            index = len(feature)
            if parent >= 0:
                (left if side == "left" else right)[parent] = index
            left.append(LEAF)
            right.append(LEAF)
            if "leaf_value" in node or "split_feature" not in node:
                feature.append(LEAF)
                threshold.append(0.0)
                leaf_value.append(float(node.get("leaf_value", 0.0)))
                continue
            if node.get("decision_type", "<=") != "<=":
                raise ParseError(f"lightgbm: tree {k} has a {node['decision_type']!r} "
                                 "(categorical) split")
            if node.get("missing_type", "None") == "Zero":
                raise ParseError(f"lightgbm: tree {k} treats zeros as missing (zero_as_missing)")
            feature.append(int(node["split_feature"]))
            threshold.append(float(node["threshold"]))
            leaf_value.append(0.0)
            stack += [(node["right_child"], index, "right"), (node["left_child"], index, "left")]
        feat = np.asarray(feature, dtype=np.int64)
        cls = k % per_iteration if n_classes > 2 else 1
        trees.append({"feature": feat, "threshold": np.where(
            feat >= 0, below_or_equal(np.asarray(threshold)), 0), "left": np.asarray(left),
            "right": np.asarray(right), "value": _class_values(np.asarray(leaf_value), cls,
                                                               n_classes)})
    ensemble = concatenate(trees, bias=np.zeros(n_classes), link="identity",
                           n_features=n_features, library="lightgbm")
    raw = np.asarray(booster.predict(probe, raw_score=True, num_threads=1), dtype=np.float64)
    return calibrated(ensemble, _as_logits(raw, n_classes), probe)


# ---------------------------------------------------------------------------------- sklearn
def from_sklearn(forest: Any, n_features: int, probe: np.ndarray) -> TreeEnsemble:
    """Parse a fitted scikit-learn ``RandomForestClassifier`` / ``ExtraTreesClassifier`` (or a
    single ``DecisionTreeClassifier``) from its trees' ``tree_`` arrays."""
    estimators = getattr(forest, "estimators_", [forest])
    n_classes = int(len(forest.classes_))
    trees = []
    for est in estimators:
        tree = est.tree_
        if tree.n_outputs != 1:
            raise ParseError("sklearn: multi-output trees are not supported")
        leaf = tree.children_left < 0
        counts = tree.value[:, 0, :].astype(np.float64)
        dist = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-300)
        if counts.shape[1] != n_classes:
            raise ParseError(f"sklearn: a tree has {counts.shape[1]} classes, the forest "
                             f"{n_classes}")
        value = np.where(leaf[:, None], dist / len(estimators), 0.0)
        trees.append({"feature": np.where(leaf, LEAF, tree.feature), "threshold": np.where(
            leaf, 0, below_or_equal(tree.threshold)), "left": tree.children_left,
            "right": tree.children_right, "value": value})
    ensemble = concatenate(trees, bias=np.zeros(n_classes), link="log", n_features=n_features,
                           library="sklearn")
    return calibrated(ensemble, np.asarray(forest.predict_proba(probe), dtype=np.float64),
                      probe)


# ---------------------------------------------------------------------------------- shared
def _class_values(leaf_value: np.ndarray, cls: int, n_classes: int) -> np.ndarray:
    """Leaf values as per-class score contributions: class ``cls`` of a multi-class model, or
    ``[-v/2, v/2]`` for a binary model's single margin."""
    value = np.zeros((leaf_value.shape[0], n_classes))
    if n_classes == 2:
        value[:, 0], value[:, 1] = -leaf_value / 2, leaf_value / 2
    else:
        value[:, cls] = leaf_value
    return value


def _as_logits(raw: np.ndarray, n_classes: int) -> np.ndarray:
    """A library's raw margins as ``(N, C)`` scores in the convention of the ensemble."""
    if n_classes == 2:
        m = raw.reshape(-1)
        return np.stack([-m / 2, m / 2], axis=1)
    return raw.reshape(raw.shape[0], n_classes)


def calibrated(ensemble: TreeEnsemble, library_scores: np.ndarray,
               probe: np.ndarray) -> TreeEnsemble:
    """``ensemble`` with the bias that matches ``library_scores`` on ``probe``; raises
    :class:`ParseError` when no single bias does (the parse is not the library's model)."""
    ours = ensemble.scores(probe)
    bias = np.median(library_scores - ours, axis=0)
    gap = np.abs(library_scores - ours - bias)
    if gap.size and gap.max() > _ATOL * max(1.0, float(np.abs(library_scores).max())):
        row = int(gap.max(axis=1).argmax())
        raise ParseError(f"{ensemble.library}: the parsed trees disagree with the library's own "
                         f"prediction on probe row {row} by {gap[row].max():.3g}")
    return TreeEnsemble(ensemble.feature, ensemble.threshold, ensemble.left, ensemble.right,
                        ensemble.value, ensemble.roots, bias, ensemble.link,
                        ensemble.n_features, ensemble.library)

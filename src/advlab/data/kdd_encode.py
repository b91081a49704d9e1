"""Encoding validated NSL-KDD / KDD Cup 1999 records into tensors and their :class:`Domain`.

:func:`encode` turns the :class:`~advlab.data.kdd_parse.KddRecords` of a training and a test
split into float32 tensors, with every statistic taken from the *training* split, and builds the
:class:`~advlab.domain.Domain` an attacker must stay in. The feature groups it relies on, and
why they are grouped so, are in :mod:`advlab.data.kdd_schema`.

Encoding, in feature order (122 features, 121 with ``drop_constant=True``):

1. The 38 numeric features in their original column order, each treated by its group in
   :mod:`advlab.data.kdd_schema` (which says why the groups are what they are):

   * Binary flags and the 15 ``*_rate`` fractions are kept as they are (min-max with the
     a-priori range [0, 1] instead of the training range; the reader checks the flags are 0/1
     and the rates lie in [0, 1]). Flags become ``"binary"`` in the domain, rates
     ``"continuous"``.
   * The heavy-tailed :data:`~advlab.data.kdd_schema.LOG1P_FEATURES` (``duration``,
     ``src_bytes``, ``dst_bytes``, ``hot``, ``num_compromised``, ``num_root``,
     ``num_file_creations``) go through ``log1p``, then min-max. They become ``"continuous"``
     in the domain: the log scale has no uniform integer grid.
   * The other integer counts (``count``, ``srv_count``, ``dst_host_count``,
     ``wrong_fragment`` ...) are min-max scaled linearly with the training minimum and maximum.
     Their raw integer grid maps onto the scaled grid with step ``1 / (max - min)``, recorded as
     the ``"integer"`` kind and ``resolution`` of the domain.
   * Test values outside the training range are clipped into [0, 1]; the number of clipped test
     cells is recorded in ``info["clipped_test_cells"]`` (and per feature). A feature that is
     constant in training (max == min) carries no information for the model and maps to 0 for
     every record; its domain upper bound is 0, since no raw value can reach another scaled value.
   * ``num_outbound_cmds`` is 0 in every record of every KDD file; ``drop_constant=True`` removes
     it (a fixed choice, not a data-dependent one), giving 121 features.

2. One-hot ``protocol_type`` (3), ``service`` (70) and ``flag`` (11) on the fixed vocabularies,
   named like ``protocol_type=tcp``. They form the three ``one_hot_groups`` of the domain; the
   ``protocol_type`` group is immutable (an attacker cannot turn a UDP connection into a TCP one
   while keeping it the same attack). One-hot columns are deliberately *not* also marked
   ``"binary"``: the domain's repair would round each indicator separately before taking the
   group's arg-max and could lose the winner.

Scaling is computed in float64 and cast to float32 at the end, so the scaled integer counts lie
on their grid up to float32 rounding (far below the domain's tolerance of 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from advlab.data.kdd_parse import KddRecords
from advlab.data.kdd_schema import (
    ATTACK_NAMES,
    BINARY_FEATURES,
    CATEGORICAL,
    CONSTANT_FEATURES,
    LOG1P_FEATURES,
    NUMERIC_NAMES,
    RATE_FEATURES,
    LabelMode,
    check_labels,
)
from advlab.domain import Domain, Kind

_VALIDATE_ROWS = 65_536


@dataclass
class Encoded:
    """Output of :func:`encode`."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    domain: Domain
    feature_names: tuple[str, ...]
    info: dict[str, Any]


def validate_in_chunks(domain: Domain, x: torch.Tensor, name: str,
                       rows: int = _VALIDATE_ROWS) -> None:
    """:meth:`Domain.validate` on blocks of rows, which bounds the memory of its temporaries
    (several ``(N, F)`` tensors) on the 370,000-row KDD Cup split. The error names the block."""
    if len(x) <= rows:
        domain.validate(x, name=name)
        return
    for start in range(0, len(x), rows):
        domain.validate(x[start:start + rows], name=f"{name}[{start}:{start + rows}]")


def _minmax(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Min-max with the training range; test values clipped into [0, 1].

    Returns the scaled train and test columns, the training range ``max - min`` (0 for a
    constant feature, which maps to 0) and the number of clipped test cells.
    """
    lo, hi = float(train.min()), float(train.max())
    span = hi - lo
    if span <= 0:
        return np.zeros_like(train), np.zeros_like(test), 0.0, int((test != lo).sum())
    a = (train - lo) / span
    b = (test - lo) / span
    clipped = int(((b < 0) | (b > 1)).sum())
    return a, np.clip(b, 0.0, 1.0), span, clipped


def _unseen_in_train(train: KddRecords, test: KddRecords) -> tuple[list[str], list[str]]:
    """The categorical values (``"service=tftp_u"``) and attack names of ``test`` that
    ``train`` lacks."""
    unseen = []
    for k, (_, name, vocab) in enumerate(CATEGORICAL):
        seen = set(np.unique(train.categorical[:, k]).tolist())
        new = set(np.unique(test.categorical[:, k]).tolist()) - seen
        unseen += [f"{name}={vocab[c]}" for c in sorted(new)]
    new_attacks = set(np.unique(test.attack).tolist()) - set(np.unique(train.attack).tolist())
    return unseen, sorted(ATTACK_NAMES[a] for a in new_attacks)


def encode(train: KddRecords, test: KddRecords, *, labels: LabelMode,
           drop_constant: bool = False) -> Encoded:
    """Encode validated KDD records into tensors and build their :class:`Domain`.

    See the module docstring for each step and why. All statistics come from ``train``.
    """
    labels = check_labels(labels)
    n_tr, n_te = len(train), len(test)
    numeric_names = [n for n in NUMERIC_NAMES if not (drop_constant and n in CONSTANT_FEATURES)]
    n_num = len(numeric_names)
    widths = [len(vocab) for _, _, vocab in CATEGORICAL]
    n_features = n_num + sum(widths)

    # Columns are computed in float64 and cast to float32 on assignment.
    x_tr = np.zeros((n_tr, n_features), dtype=np.float32)
    x_te = np.zeros((n_te, n_features), dtype=np.float32)
    kinds: list[Kind] = []
    resolution = np.ones(n_features)
    upper = np.ones(n_features)
    clipped: dict[str, int] = {}
    constant: list[str] = []
    for j, name in enumerate(numeric_names):
        src = NUMERIC_NAMES.index(name)
        a, b = train.numeric[:, src], test.numeric[:, src]
        if name in BINARY_FEATURES or name in RATE_FEATURES:
            # Fixed range [0, 1], validated by the reader: kept as is.
            x_tr[:, j], x_te[:, j] = a, b
            kinds.append("binary" if name in BINARY_FEATURES else "continuous")
            continue
        log = name in LOG1P_FEATURES
        if log:
            a, b = np.log1p(a), np.log1p(b)
        x_tr[:, j], x_te[:, j], span, n_clipped = _minmax(a, b)
        if n_clipped:
            clipped[name] = n_clipped
        if span == 0:
            constant.append(name)
            upper[j] = 0.0
        if log:
            kinds.append("continuous")
        else:
            kinds.append("integer")
            if span > 0:
                resolution[j] = 1.0 / span

    groups: list[list[int]] = []
    one_hot_names: list[str] = []
    offset = n_num
    for k, (_, name, vocab) in enumerate(CATEGORICAL):
        x_tr[np.arange(n_tr), offset + train.categorical[:, k]] = 1.0
        x_te[np.arange(n_te), offset + test.categorical[:, k]] = 1.0
        groups.append(list(range(offset, offset + len(vocab))))
        one_hot_names += [f"{name}={v}" for v in vocab]
        kinds += ["continuous"] * len(vocab)  # the group, not the kind, makes them discrete
        offset += len(vocab)
    feature_names = tuple(numeric_names + one_hot_names)

    domain = Domain(
        lower=np.zeros(n_features).tolist(),
        upper=upper.tolist(),
        kinds=kinds,
        resolution=resolution.tolist(),
        one_hot_groups=groups,
        immutable=groups[0],  # protocol_type
        feature_names=feature_names,
    )
    xt, xs = torch.from_numpy(x_tr), torch.from_numpy(x_te)
    validate_in_chunks(domain, xt, "x_train")
    validate_in_chunks(domain, xs, "x_test")

    unseen, test_only = _unseen_in_train(train, test)
    vocab_sizes = ", ".join(f"{name} ({len(vocab)})" for _, name, vocab in CATEGORICAL)
    info: dict[str, Any] = {
        "labels": labels,
        "n_features": n_features,
        "encoding": f"{n_num} numeric features (original column order), then one-hot "
                    f"{vocab_sizes} on fixed vocabularies",
        "scaling": "min-max on train",
        "log1p": list(LOG1P_FEATURES),
        "fixed_range_features": list(BINARY_FEATURES + RATE_FEATURES),
        "constant_in_train": constant,
        "dropped_features": list(CONSTANT_FEATURES) if drop_constant else [],
        "clipped_test_cells": int(sum(clipped.values())),
        "clipped_test_cells_by_feature": clipped,
        "immutable": [feature_names[i] for i in groups[0]],
        "test_categories_unseen_in_train": unseen,
        "test_attacks_unseen_in_train": test_only,
        "train_rows": n_tr,
        "test_rows": n_te,
    }
    return Encoded(xt, torch.from_numpy(train.targets(labels)), xs,
                   torch.from_numpy(test.targets(labels)), domain, feature_names, info)

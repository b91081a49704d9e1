"""Dataset loaders and their registry.

Every loader returns a :class:`Dataset`: float32 train/test tensors, int64 labels, the feature and
class names, the input :class:`~advlab.domain.Domain` (which both splits are validated against)
and an ``info`` dict recording the source and every preprocessing step (JSON-serialisable; it
goes into model sidecars). Loaders never download anything: except for the embedded ``digits``
they take the path of local files. Malformed files raise :class:`DataFormatError` naming the
file, the line and the problem.

>>> from advlab.data import load
>>> ds = load("digits")
>>> ds.input_shape
(1, 8, 8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advlab.data.base import DataFormatError, Dataset
from advlab.data.digits import digits
from advlab.data.kddcup99 import kddcup99
from advlab.data.mnist import mnist
from advlab.data.nsl_kdd import nsl_kdd
from advlab.data.tuandromd import tuandromd

__all__ = [
    "DATASETS",
    "DataFormatError",
    "Dataset",
    "DatasetSpec",
    "digits",
    "kddcup99",
    "load",
    "mnist",
    "nsl_kdd",
    "tuandromd",
]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set.

    Attributes:
        name: registry name, as passed to :func:`load`.
        loader: the loader function.
        needs_path: whether the loader needs the path of local files.
        description: one line: what the data is, where it comes from, its licence.
        input_shape: shape of one sample, for listings.
    """

    name: str
    loader: Callable[..., Dataset]
    needs_path: bool
    description: str
    input_shape: str


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("digits", digits, False,
                    "8x8 handwritten digits embedded in scikit-learn (UCI optical digits, "
                    "CC BY 4.0); no files needed", "(1, 8, 8), or (1, 28, 28) with upsample"),
        DatasetSpec("mnist", mnist, True,
                    "MNIST handwritten digits from IDX files in a folder (LeCun, Cortes, Burges; "
                    "CC BY-SA 3.0)", "(1, 28, 28)"),
        DatasetSpec("nsl-kdd", nsl_kdd, True,
                    "NSL-KDD network intrusion records, folder of KDDTrain+/KDDTest+ text files "
                    "(CIC, UNB; Tavallaee et al., CISDA 2009)",
                    "(122,), (121,) with drop_constant"),
        DatasetSpec("kddcup99", kddcup99, True,
                    "KDD Cup 1999 10% network intrusion file, gzip (UCI KDD archive, CC BY 4.0)",
                    "(122,), (121,) with drop_constant"),
        DatasetSpec("tuandromd", tuandromd, True,
                    "TUANDROMD Android malware, 241 binary permission/API features, CSV "
                    "(Tezpur University, UCI, CC BY 4.0)", "(241,)"),
    )
}
"""Registered data sets by name."""


def load(name: str, path: str | Path | None = None, **options: Any) -> Dataset:
    """Load a registered data set by name.

    Args:
        name: one of :data:`DATASETS` (case-insensitive; ``_`` may stand for ``-``).
        path: the data file or folder, for data sets that need one (all but ``digits``).
        **options: keyword options of the loader (e.g. ``labels="5class"``, ``seed=1``).

    Raises:
        ValueError: unknown name, a missing path for a data set that needs one, or a path given
            to a data set that takes none.
    """
    key = name.strip().lower().replace("_", "-")
    spec = DATASETS.get(key)
    if spec is None:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if spec.needs_path:
        if path is None:
            raise ValueError(f"dataset {spec.name!r} needs a path to its local files "
                             f"({spec.description})")
        return spec.loader(path, **options)
    if path is not None:
        raise ValueError(f"dataset {spec.name!r} is embedded and takes no path (got {path!r})")
    return spec.loader(**options)

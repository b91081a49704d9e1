"""scikit-learn's embedded 8x8 handwritten digits (needs no files)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from advlab.data.base import Dataset
from advlab.domain import Domain

CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def digits(*, upsample: bool = False, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """Load the UCI optical handwritten digits shipped with scikit-learn (1,797 images, 8x8).

    The data (:func:`sklearn.datasets.load_digits`; UCI "Optical Recognition of Handwritten
    Digits", CC BY 4.0) is embedded in scikit-learn, so this loader needs no files and no
    network: it is the data set of the demo and of fast tests.

    Preprocessing:

    * Pixel values are integers 0..16 (counts of set pixels in 4x4 blocks of the original
      32x32 bitmaps); they are divided by 16 into [0, 1] and returned as float32
      ``(N, 1, 8, 8)``.
    * With ``upsample=True`` the images are bilinearly resized to ``(N, 1, 28, 28)`` with
      :func:`torch.nn.functional.interpolate` (``align_corners=False``) and clamped to [0, 1],
      so that MNIST-shaped models can be exercised without MNIST files.
    * The split is a seeded stratified :func:`~sklearn.model_selection.train_test_split`.

    The domain is the plain box ``Domain(0, 1)``; the values of the 8x8 images lie on the grid
    k/16, but attacks on images treat pixels as continuous.

    Args:
        upsample: resize to 28x28.
        test_size: fraction of the images in the test split.
        seed: seed of the split.

    Returns:
        The :class:`~advlab.data.base.Dataset` named ``"digits"`` with classes ``"0"`` .. ``"9"``.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"digits: test_size must be in (0, 1), got {test_size}")
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float64) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    if upsample:
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_size,
                                           random_state=seed, stratify=y)
    x_train, x_test = x[torch.from_numpy(train_idx)], x[torch.from_numpy(test_idx)]
    domain = Domain(0.0, 1.0)
    domain.validate(x_train, name="x_train")
    domain.validate(x_test, name="x_test")
    side = x.shape[-1]
    info = {
        "source": "sklearn.datasets.load_digits (embedded; UCI optical digits, CC BY 4.0)",
        "files": [],
        "scaling": "pixels / 16",
        "upsample": "bilinear to 28x28, align_corners=False, clamped to [0, 1]" if upsample
                    else None,
        "split": {"test_size": test_size, "seed": seed, "stratify": "label"},
    }
    names = tuple(f"pixel_{r}_{c}" for r in range(side) for c in range(side))
    return Dataset("digits", x_train.contiguous(), torch.from_numpy(y[train_idx]),
                   x_test.contiguous(), torch.from_numpy(y[test_idx]), domain, names,
                   CLASS_NAMES, info)

"""MNIST from standard IDX files (gzip or raw)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from advlab.data.base import DataFormatError, Dataset
from advlab.domain import Domain

IMAGES_MAGIC = 0x00000803
"""IDX magic of an unsigned-byte 3-d array (images)."""
LABELS_MAGIC = 0x00000801
"""IDX magic of an unsigned-byte 1-d array (labels)."""
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def read_idx(path: str | Path, expected_magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes into a ``uint8`` array of the header's shape.

    The IDX format (LeCun et al.) is a big-endian header -- two zero bytes, a type byte
    (``0x08``: unsigned byte), the number of dimensions, then one 32-bit size per dimension --
    followed by the data. Gzip files are detected by their magic bytes ``1f 8b``, so both
    ``*.gz`` and uncompressed files work whatever their names.

    Raises:
        DataFormatError: unreadable gzip stream, a header shorter than announced, a wrong magic
            number (wrong file type or not IDX) or a data size that does not match the header
            (truncated file or trailing bytes). Binary files have no lines: the error names the
            file and the problem.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataFormatError(path, None, f"corrupt or truncated gzip data: {exc}") from exc
    if len(raw) < 4:
        raise DataFormatError(path, None, f"file too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DataFormatError(path, None, f"bad magic number 0x{magic:08x}; IDX {kind} files "
                              f"start with 0x{expected_magic:08x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(path, None, f"truncated header: {ndim} dimensions need {header} "
                              f"bytes, the file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(raw) - header
    if actual != expected:
        what = "truncated data" if actual < expected else "trailing bytes after the data"
        raise DataFormatError(path, None, f"{what}: header dimensions {dims} need {expected} "
                              f"data bytes after the {header}-byte header, found {actual}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not found:
        raise FileNotFoundError(f"mnist: no {what} file matching {pattern!r} in {folder}")
    if len(found) > 1:
        raise FileNotFoundError(f"mnist: ambiguous {what} files in {folder} (matching "
                                f"{pattern!r}): {[p.name for p in found]}; keep one")
    return found[0]


def _split(folder: Path, split: str, image_pattern: str,
           label_pattern: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    img_file = _find(folder, image_pattern, f"{split} images")
    lab_file = _find(folder, label_pattern, f"{split} labels")
    images = read_idx(img_file, IMAGES_MAGIC)
    labels = read_idx(lab_file, LABELS_MAGIC)
    if images.ndim != 3:
        raise DataFormatError(img_file, None, f"images need 3 dimensions (N, rows, cols), "
                              f"the header has {images.ndim}")
    if labels.ndim != 1:
        raise DataFormatError(lab_file, None, f"labels need 1 dimension, the header has "
                              f"{labels.ndim}")
    if len(images) != len(labels):
        raise DataFormatError(lab_file, None, f"count mismatch: {len(labels)} labels for "
                              f"{len(images)} images in {img_file.name}")
    if labels.size and int(labels.max()) > 9:
        i = int(np.argmax(labels > 9))
        raise DataFormatError(lab_file, None, f"label {int(labels[i])} of item {i} is outside "
                              "0..9")
    return images, labels, [img_file.name, lab_file.name]


def mnist(path: str | Path, *, train_limit: int | None = None) -> Dataset:
    """Load MNIST digits (LeCun, Cortes, Burges; CC BY-SA 3.0) from IDX files in a folder.

    Training files are found by the globs ``*train*images-idx3-ubyte*`` and
    ``*train*labels-idx1-ubyte*`` (the standard ``train-images-idx3-ubyte(.gz)`` as well as
    advlab's 10,000-image ``train-10k-images-idx3-ubyte.gz``), test files by
    ``t10k-images-idx3-ubyte*`` and ``t10k-labels-idx1-ubyte*``; each glob must match exactly
    one file (a folder with both the ``.gz`` and the uncompressed copy is ambiguous). Every file
    is checked (see :func:`read_idx`), labels must lie in 0..9 and each images file must have as
    many items as its labels file.

    Pixels are divided by 255 into [0, 1] and returned as float32 ``(N, 1, 28, 28)``; the
    domain is the plain box ``Domain(0, 1)``.

    Args:
        path: the folder holding the IDX files.
        train_limit: keep only the first ``train_limit`` training images (the test set is
            always complete).

    Returns:
        The :class:`~advlab.data.base.Dataset` named ``"mnist"``.

    Raises:
        FileNotFoundError: the folder or a file is missing, or a glob is ambiguous.
        DataFormatError: a malformed IDX file.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"mnist: {folder} is not a directory (pass the folder holding "
                                "the IDX files)")
    if train_limit is not None and train_limit < 1:
        raise ValueError(f"mnist: train_limit must be >= 1, got {train_limit}")
    x_tr, y_tr, train_files = _split(folder, "train", "*train*images-idx3-ubyte*",
                                     "*train*labels-idx1-ubyte*")
    x_te, y_te, test_files = _split(folder, "test", "t10k-images-idx3-ubyte*",
                                    "t10k-labels-idx1-ubyte*")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataFormatError(folder, None, f"train images are {x_tr.shape[1:]}, test images "
                              f"{x_te.shape[1:]}")
    n_train_file = len(x_tr)
    if train_limit is not None:
        x_tr, y_tr = x_tr[:train_limit], y_tr[:train_limit]

    def to_tensor(images: np.ndarray) -> torch.Tensor:
        x = images.astype(np.float32) / np.float32(255.0)
        return torch.from_numpy(x).unsqueeze(1)

    rows, cols = x_tr.shape[1:]
    x_train, x_test = to_tensor(x_tr), to_tensor(x_te)
    domain = Domain(0.0, 1.0)
    domain.validate(x_train, name="x_train")
    domain.validate(x_test, name="x_test")
    info = {
        "source": str(folder),
        "files": train_files + test_files,
        "dataset": "MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0",
        "scaling": "pixels / 255",
        "train_rows_in_file": n_train_file,
        "train_limit": train_limit,
    }
    names = tuple(f"pixel_{r}_{c}" for r in range(rows) for c in range(cols))
    return Dataset("mnist", x_train, torch.from_numpy(y_tr.astype(np.int64)), x_test,
                   torch.from_numpy(y_te.astype(np.int64)), domain, names, CLASS_NAMES, info)

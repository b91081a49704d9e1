"""TUANDROMD: Tezpur University Android Malware Dataset (UCI)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advlab.data.base import DataFormatError, Dataset
from advlab.data.reading import BadRows, OnBadRows, check_on_bad_rows, find_file, warn_skipped
from advlab.data.tuandromd_features import FEATURE_NAMES
from advlab.domain import Domain

N_FEATURES = 241
"""Permission and API-call features of TUANDROMD."""
LABEL_COLUMN = "Label"
CLASS_NAMES: tuple[str, ...] = ("goodware", "malware")
_BINARY_TEXT = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


def _cell_problem(col: int, name: str, text: str, what: str) -> str | None:
    if text.strip() in _BINARY_TEXT:
        return None
    where = f"column {col + 1} ({name})"
    if not text.strip():
        return f"{where}: missing value (empty cell)"
    return f"{where}: {what} {text!r} is not 0 or 1"


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _header_problem(names: list[str]) -> str | None:
    """Why a header is not ``N_FEATURES`` feature names then ``Label``, or ``None`` if it is.

    Names the missing and extra columns: against the data set's own names
    (:data:`~advlab.data.tuandromd_features.FEATURE_NAMES`) when most of the header's are theirs,
    else by position and count. Empty and duplicate names are checked afterwards.
    """
    if len(names) == N_FEATURES + 1 and names[-1] == LABEL_COLUMN:
        return None
    known = set(FEATURE_NAMES)
    details = []
    if LABEL_COLUMN in names:
        features = [n for n in names if n != LABEL_COLUMN]
        if names[-1] != LABEL_COLUMN:
            details.append(f"{LABEL_COLUMN!r} is column {names.index(LABEL_COLUMN) + 1}, not "
                           "the last")
    elif names[-1] in known:  # the label column is gone
        features = names
        details.append(f"no {LABEL_COLUMN!r} column (the last is the feature {names[-1]!r})")
    else:  # the label column under another name
        features = names[:-1]
        details.append(f"the last column is {names[-1]!r}, expected {LABEL_COLUMN!r}")
    if sum(n in known for n in features) > len(FEATURE_NAMES) / 2:
        given = set(features)
        missing = [n for n in FEATURE_NAMES if n not in given]
        extra = [n for n in features if n not in known]
        if missing:
            details.append(f"{len(missing)} feature column(s) missing: {_names(missing)}")
        if extra:
            details.append(f"{len(extra)} unknown column(s): {_names(extra)}")
    if len(features) != N_FEATURES:
        details.append(f"{len(features)} feature columns where {N_FEATURES} are expected")
    layout = f"{N_FEATURES} feature names, then {LABEL_COLUMN!r}"
    head = (f"header has {len(names)} columns, expected {N_FEATURES + 1} ({layout})"
            if len(names) != N_FEATURES + 1 else f"header is not {layout}")
    return f"{head}: " + "; ".join(details)


def _records(file: Path, reader: Any) -> Iterator[list[str]]:
    """The rows of a ``csv.reader``; its errors (e.g. a field over the size limit) become
    :class:`DataFormatError` with the line."""
    try:
        yield from reader
    except csv.Error as err:
        raise DataFormatError(file, reader.line_num, f"unreadable CSV: {err}") from None


def _read(file: Path, on_bad_rows: OnBadRows) -> tuple[list[str], np.ndarray, np.ndarray,
                                                          BadRows, int]:
    """Parse and validate the CSV; returns names, features, labels, skipped rows, blanks."""
    rows: list[bytes] = []
    labels: list[int] = []
    bad_rows, blank = BadRows(file, on_bad_rows), 0
    fast = {"0", "1"}
    # utf-8-sig drops a byte-order mark; undecodable bytes become U+FFFD and then fail validation
    # with a line number.
    with open(file, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        records = _records(file, reader)
        header = next(records, None)
        while header is not None and not any(c.strip() for c in header):
            header = next(records, None)  # leading blank lines
        if header is None:
            raise DataFormatError(file, None, "the file is empty (no header, no records)")
        header_line = reader.line_num
        names = [c.strip() for c in header]
        if sum(c in _BINARY_TEXT for c in names) > len(names) / 2:
            raise DataFormatError(file, header_line, "missing header row: the first line holds "
                                  f"data, expected {N_FEATURES} feature names and "
                                  f"{LABEL_COLUMN!r}")
        problem = _header_problem(names)
        if problem is not None:
            raise DataFormatError(file, header_line, problem)
        empty = [i + 1 for i, c in enumerate(names) if not c]
        if empty:
            raise DataFormatError(file, header_line, f"header column {empty[0]} has no name")
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise DataFormatError(file, header_line, f"duplicate column names in header: {dupes}")

        for row in records:
            line = reader.line_num
            if len(row) == N_FEATURES + 1 and fast.issuperset(row):
                rows.append("".join(row[:-1]).encode("ascii"))
                labels.append(int(row[-1]))
                continue
            if not any(c.strip() for c in row):
                blank += 1
                continue
            if len(row) != N_FEATURES + 1:
                problem = (f"expected {N_FEATURES + 1} comma-separated columns "
                           f"({N_FEATURES} features and {LABEL_COLUMN!r}), found {len(row)}")
            else:
                problem = None
                for col, text in enumerate(row[:-1]):
                    problem = _cell_problem(col, names[col], text, "value")
                    if problem is not None:
                        break
                if problem is None:
                    problem = _cell_problem(N_FEATURES, LABEL_COLUMN, row[-1], "unknown label")
                if problem is None:  # representations like " 1" or "1.0"
                    values = [_BINARY_TEXT[c.strip()] for c in row]
                    rows.append(bytes(48 + v for v in values[:-1]))
                    labels.append(values[-1])
                    continue
            bad_rows.report(line, problem)
    if not rows:
        raise bad_rows.no_valid_rows("no records after the header")
    x = (np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), N_FEATURES) - 48)
    return names[:-1], x.astype(np.float32), np.array(labels, dtype=np.int64), bad_rows, blank


def tuandromd(path: str | Path, *, test_size: float = 0.3, seed: int = 0,
              on_bad_rows: OnBadRows = "raise") -> Dataset:
    """Load TUANDROMD, the Tezpur University Android Malware Dataset (UCI, CC BY 4.0).

    The CSV has a header row naming 241 binary features (Android permissions and API calls an
    app requests or uses) and a last column ``Label`` (1 = malware, 0 = goodware); the copy in
    advlab's data folder has 4,464 records (3,565 malware, 899 goodware). Every row is validated:
    242 columns, each feature 0 or 1 (``"1.0"`` and surrounding spaces are accepted, an empty
    cell is a missing value and an error), label 0 or 1. Whitespace-only lines hold no record
    and are ignored.

    The features are used as they are (already in {0, 1}; no scaling). The split is a seeded
    stratified one (:func:`sklearn.model_selection.train_test_split`, default 70/30, stratified
    on the label; without stratification only when a class has fewer than two records).

    Domain: every feature is ``"binary"`` with bounds [0, 1] and *increase-only*: an attacker can
    add a permission or an API call to an app without breaking it, but removing one the app
    needs would break its functionality (the usual threat model of feature-space Android
    malware evasion, e.g. Grosse et al., ESORICS 2017). Both splits are validated against it.

    Args:
        path: the CSV file, or the folder holding ``TUANDROMD.csv`` (or a single ``*.csv``).
        test_size: fraction of the records in the test split.
        seed: seed of the split.
        on_bad_rows: ``"raise"`` (default) raises on the first malformed row; ``"skip"`` skips
            malformed rows, warns with their number and records it in ``info["skipped_rows"]``.

    Returns:
        The :class:`~advlab.data.base.Dataset` named ``"tuandromd"`` with classes
        ``("goodware", "malware")``.

    Raises:
        FileNotFoundError: no (or more than one candidate) file.
        DataFormatError: empty file, missing or wrong header, or a malformed row (names the file,
            the line, the column and the value).
    """
    on_bad_rows = check_on_bad_rows(on_bad_rows)
    if not 0 < test_size < 1:
        raise ValueError(f"tuandromd: test_size must be in (0, 1), got {test_size}")
    file = find_file(Path(path), ("TUANDROMD.csv", "*.csv"), "tuandromd")
    from sklearn.model_selection import train_test_split  # slow to import: only when used

    names, x, y, bad_rows, blank = _read(file, on_bad_rows)
    warn_skipped(file, bad_rows.skipped, bad_rows.lines)
    if len(y) < 2:
        raise DataFormatError(file, None, f"{len(y)} valid record(s); a train/test split needs "
                              "at least 2")
    counts = np.bincount(y, minlength=2)
    n_test = int(np.ceil(test_size * len(y)))  # as scikit-learn rounds it
    stratify = y if counts.min() >= 2 and min(n_test, len(y) - n_test) >= 2 else None
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_size,
                                           random_state=seed, stratify=stratify)
    domain = Domain(
        lower=[0.0] * N_FEATURES,
        upper=[1.0] * N_FEATURES,
        kinds=["binary"] * N_FEATURES,
        increase_only=list(range(N_FEATURES)),
        feature_names=names,
    )
    x_train, x_test = torch.from_numpy(x[train_idx]), torch.from_numpy(x[test_idx])
    domain.validate(x_train, name="x_train")
    domain.validate(x_test, name="x_test")
    info = {
        "source": str(file),
        "files": [file.name],
        "dataset": "TUANDROMD, Tezpur University Android Malware Dataset (UCI, CC BY 4.0)",
        "scaling": "none (binary features)",
        "split": {"test_size": test_size, "seed": seed,
                  "stratify": "label" if stratify is not None else "none"},
        "class_counts": {"goodware": int(counts[0]), "malware": int(counts[1])},
        "constraints": "all features binary and increase-only",
        "skipped_rows": bad_rows.skipped,
        "blank_lines_ignored": blank,
    }
    return Dataset("tuandromd", x_train, torch.from_numpy(y[train_idx]), x_test,
                   torch.from_numpy(y[test_idx]), domain, tuple(names), CLASS_NAMES, info)

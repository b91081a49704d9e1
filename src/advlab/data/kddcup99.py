"""KDD Cup 1999 network intrusion data (the 10 % file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from advlab.data.base import DataFormatError, Dataset
from advlab.data.kdd_encode import encode
from advlab.data.kdd_parse import KddRecords, read_kdd_file
from advlab.data.kdd_schema import LabelMode, check_labels, class_names
from advlab.data.reading import OnBadRows, check_on_bad_rows, find_file, warn_skipped


def _stratify_target(records: KddRecords, test_size: float) -> tuple[np.ndarray | None, str]:
    """The finest label a stratified split supports: 5-class, else binary, else none.

    Stratification needs at least two members per class and at least one sample per class in
    each split.
    """
    n = len(records)
    n_test = int(np.ceil(test_size * n))  # as scikit-learn rounds it
    n_train = n - n_test
    for mode in ("5class", "binary"):
        y = records.targets(mode)  # type: ignore[arg-type]
        counts = np.bincount(y)
        counts = counts[counts > 0]
        if counts.min() >= 2 and min(n_test, n_train) >= len(counts):
            return y, mode
    return None, "none"


def kddcup99(path: str | Path, *, labels: LabelMode = "binary", test_size: float = 0.25,
             seed: int = 0, drop_constant: bool = False,
             on_bad_rows: OnBadRows = "raise") -> Dataset:
    """Load the KDD Cup 1999 10 % file with a seeded stratified train/test split.

    KDD Cup 1999 (UCI KDD archive, CC BY 4.0; the DARPA 1998 intrusion detection evaluation) has
    the same 41 features as NSL-KDD, 42 comma-separated columns with no header and labels with a
    trailing dot (``smurf.``). The 10 % file ``kddcup.data_10_percent.gz`` (gzip, detected by its
    magic bytes) has 494,021 records, most of them duplicates of ``smurf`` and ``neptune`` DoS
    traffic; NSL-KDD is the de-duplicated, rebalanced version.

    The file is split with :func:`sklearn.model_selection.train_test_split` (``random_state=
    seed``), stratified on the 5-class category (normal, DoS, Probe, R2L, U2R); when a category
    has fewer than two records (small or filtered files) it stratifies on normal/attack instead,
    and without stratification when even that is impossible (recorded in ``info["stratify"]``).
    Scaling statistics come from the training split only. The encoding and the
    :class:`~advlab.domain.Domain` are those of NSL-KDD (see :mod:`advlab.data.kdd_encode`): 122
    features (121 with ``drop_constant=True``), ``log1p`` on the heavy-tailed features, min-max
    on train, test values clipped into [0, 1], one-hot categories with an immutable
    ``protocol_type``.

    Args:
        path: the gzip (or plain) file, or the folder holding ``kddcup.data_10_percent.gz``.
        labels: ``"binary"`` (``normal``, ``attack``) or ``"5class"``.
        test_size: fraction of the records in the test split.
        seed: seed of the split.
        drop_constant: drop ``num_outbound_cmds`` (always 0).
        on_bad_rows: ``"raise"`` or ``"skip"`` (skipped rows are warned about and counted in
            ``info["skipped_rows"]``).

    Returns:
        The :class:`~advlab.data.base.Dataset` named ``"kddcup99"``.

    Raises:
        FileNotFoundError: no (or more than one candidate) file.
        DataFormatError: a malformed file (names the file, the line, the column and the value).
    """
    labels = check_labels(labels)
    on_bad_rows = check_on_bad_rows(on_bad_rows)
    if not 0 < test_size < 1:
        raise ValueError(f"kddcup99: test_size must be in (0, 1), got {test_size}")
    file = find_file(Path(path), ("kddcup.data_10_percent.gz", "kddcup.data_10_percent",
                                  "kddcup.data*"), "kddcup99")
    records = read_kdd_file(file, difficulty=False, on_bad_rows=on_bad_rows)
    warn_skipped(file, records.skipped_rows, records.skipped_lines)
    if len(records) < 2:
        raise DataFormatError(file, None, f"{len(records)} valid record(s); a train/test "
                              "split needs at least 2")
    from sklearn.model_selection import train_test_split  # slow to import: only when used

    stratify, mode = _stratify_target(records, test_size)
    train_idx, test_idx = train_test_split(np.arange(len(records)), test_size=test_size,
                                           random_state=seed, stratify=stratify)
    enc = encode(records.subset(train_idx), records.subset(test_idx),
                 labels=labels, drop_constant=drop_constant)
    info = {
        "source": str(file),
        "files": [file.name],
        "dataset": "KDD Cup 1999, 10% file (UCI KDD archive, CC BY 4.0)",
        "split": {"test_size": test_size, "seed": seed, "stratify": mode},
        **enc.info,
        "skipped_rows": records.skipped_rows,
        "blank_lines_ignored": records.blank_lines,
    }
    return Dataset("kddcup99", enc.x_train, enc.y_train, enc.x_test, enc.y_test, enc.domain,
                   enc.feature_names, class_names(labels), info)

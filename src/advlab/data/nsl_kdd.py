"""NSL-KDD network intrusion data (Tavallaee et al., CISDA 2009)."""

from __future__ import annotations

from pathlib import Path

from advlab.data.base import Dataset
from advlab.data.kdd_encode import encode
from advlab.data.kdd_parse import read_kdd_file
from advlab.data.kdd_schema import LabelMode, check_labels, class_names
from advlab.data.reading import OnBadRows, check_on_bad_rows, warn_skipped


def nsl_kdd(path: str | Path, *, labels: LabelMode = "binary",
            train_file: str = "KDDTrain+_20Percent.txt", test_file: str = "KDDTest+.txt",
            drop_constant: bool = False, on_bad_rows: OnBadRows = "raise") -> Dataset:
    """Load NSL-KDD: connection records labelled normal or with an attack name.

    NSL-KDD (Tavallaee, Bagheri, Lu, Ghorbani, "A Detailed Analysis of the KDD CUP 99 Data Set",
    CISDA 2009; Canadian Institute for Cybersecurity, UNB) is KDD Cup 1999 with duplicate records
    removed and the records re-sampled by difficulty. Each file has 43 comma-separated columns and
    no header: the 41 features, the attack label (``normal``, ``neptune``, ...) and a difficulty
    level 0..21 (the number of 21 reference learners that classified the record correctly). The
    difficulty is validated and then discarded.

    Preprocessing (steps in :mod:`advlab.data.kdd_encode`, reasons in :mod:`advlab.data.kdd_schema`,
    measured figures in ``docs/datasets.md``): 38 numeric features, with binary flags and rates kept
    in their fixed range [0, 1], ``log1p`` on the heavy-tailed features (``duration``,
    ``src_bytes``, ``dst_bytes``, ``hot``, ``num_compromised``, ``num_root``,
    ``num_file_creations``) and min-max scaling with statistics of the *training file only*; test
    values outside the training range are clipped into [0, 1] and counted in
    ``info["clipped_test_cells"]``; then one-hot ``protocol_type`` (3), ``service`` (70) and
    ``flag`` (11) on fixed vocabularies: 122 features, or 121 with ``drop_constant=True`` (drops
    ``num_outbound_cmds``, always 0). The returned :class:`~advlab.domain.Domain` has bounds [0, 1]
    (0 for a feature constant in training), binary flags, integer counts on their scaled grid, the
    three one-hot groups and an immutable ``protocol_type``; both splits are validated against it.

    Args:
        path: the folder holding the NSL-KDD text files.
        labels: ``"binary"`` (classes ``normal``, ``attack``) or ``"5class"`` (``normal``,
            ``DoS``, ``Probe``, ``R2L``, ``U2R``, with the standard attack grouping including
            the 17 attacks that occur only in the test files).
        train_file: training file name in ``path`` (default the 25,192-row 20 % subset).
        test_file: test file name in ``path`` (default KDDTest+, 22,544 rows; ``KDDTest-21.txt``
            is the harder subset).
        drop_constant: drop ``num_outbound_cmds``.
        on_bad_rows: ``"raise"`` (default) raises :class:`~advlab.data.base.DataFormatError` on
            the first malformed row; ``"skip"`` skips malformed rows, warns with their number and
            records it in ``info["skipped_rows"]``.

    Returns:
        The :class:`~advlab.data.base.Dataset` named ``"nsl-kdd"``.

    Raises:
        FileNotFoundError: ``path`` or one of the files does not exist.
        DataFormatError: a malformed file (names the file, the line, the column and the value).
    """
    labels = check_labels(labels)
    on_bad_rows = check_on_bad_rows(on_bad_rows)
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"nsl-kdd: {folder} is not a directory (pass the folder holding "
                                f"{train_file} and {test_file})")
    files = [folder / train_file, folder / test_file]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"nsl-kdd: {f} does not exist")
    train = read_kdd_file(files[0], difficulty=True, on_bad_rows=on_bad_rows)
    test = read_kdd_file(files[1], difficulty=True, on_bad_rows=on_bad_rows)
    for f, records in zip(files, (train, test), strict=True):
        warn_skipped(f, records.skipped_rows, records.skipped_lines)
    enc = encode(train, test, labels=labels, drop_constant=drop_constant)
    info = {
        "source": str(folder),
        "files": [train_file, test_file],
        "dataset": "NSL-KDD (Tavallaee et al., CISDA 2009)",
        **enc.info,
        "skipped_rows": train.skipped_rows + test.skipped_rows,
        "skipped_rows_by_file": {train_file: train.skipped_rows, test_file: test.skipped_rows},
        "blank_lines_ignored": train.blank_lines + test.blank_lines,
        "difficulty": "validated (integer 0..21) and discarded",
    }
    return Dataset("nsl-kdd", enc.x_train, enc.y_train, enc.x_test, enc.y_test, enc.domain,
                   enc.feature_names, class_names(labels), info)

"""Reading and validating NSL-KDD and KDD Cup 1999 files into raw records.

:func:`read_kdd_file` is a strict, fast reader: it checks every row against the fixed schema of
:mod:`advlab.data.kdd_schema` and reports a malformed one with file, line, column and value
(:class:`~advlab.data.base.DataFormatError`), or skips and counts it with
``on_bad_rows="skip"``. It returns :class:`KddRecords`, the validated raw values that
:mod:`advlab.data.kdd_encode` turns into tensors.

Speed: a row with the right number of columns, known categorical values and a known label
takes a fast path: its numeric cells are collected as text and converted and checked in bulk
with NumPy, 50,000 rows at a time; the rows that fail the bulk check (every row of the block
when some cell is not a number) are re-checked cell by cell. Any other row is diagnosed at once,
after the rows collected before it, so ``"raise"`` always names the first bad row of the file
and its first bad cell in column order.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from advlab.data.base import DataFormatError
from advlab.data.kdd_schema import (
    ATTACK_CATEGORY,
    ATTACK_NAMES,
    BINARY_FEATURES,
    CATEGORICAL,
    CATEGORIES,
    FEATURE_NAMES,
    NUMERIC_COLUMNS,
    RATE_FEATURES,
    LabelMode,
    check_labels,
)
from advlab.data.reading import BadRows, OnBadRows

_CATEGORY_OF_ATTACK = np.array([CATEGORIES.index(ATTACK_CATEGORY[a]) for a in ATTACK_NAMES],
                               dtype=np.int64)

_CHUNK_ROWS = 50_000
_DIFFICULTY_MAX = 21
# largest count: float64 holds every integer up to 2**53, and the scaled grid stays representable
_COUNT_MAX = 2.0**53

# Constraint codes of the validated numeric columns.
_COUNT, _FLAG, _RATE, _DIFFICULTY = 0, 1, 2, 3
_CONSTRAINT_TEXT = {
    _COUNT: "a non-negative integer count (at most 2**53)",
    _FLAG: "0 or 1",
    _RATE: "a rate in [0, 1]",
    _DIFFICULTY: f"an integer difficulty level 0..{_DIFFICULTY_MAX}",
}


@dataclass
class KddRecords:
    """Validated raw records of one KDD file (or a row subset of one).

    Attributes:
        numeric: ``(n, 38)`` float64, the numeric features in
            :data:`~advlab.data.kdd_schema.NUMERIC_NAMES` order.
        categorical: ``(n, 3)`` int64 codes into the fixed vocabularies ``PROTOCOLS``,
            ``SERVICES``, ``FLAGS`` of :mod:`~advlab.data.kdd_schema`.
        attack: ``(n,)`` int64 index into :data:`~advlab.data.kdd_schema.ATTACK_NAMES`.
        skipped_rows: malformed rows skipped with ``on_bad_rows="skip"``.
        skipped_lines: the first few line numbers of skipped rows.
        blank_lines: whitespace-only lines (they hold no record and are ignored).
    """

    numeric: np.ndarray
    categorical: np.ndarray
    attack: np.ndarray
    skipped_rows: int = 0
    skipped_lines: list[int] = field(default_factory=list)
    blank_lines: int = 0

    def __len__(self) -> int:
        return int(self.attack.shape[0])

    def subset(self, index: np.ndarray) -> KddRecords:
        return KddRecords(self.numeric[index], self.categorical[index], self.attack[index])

    def targets(self, labels: LabelMode) -> np.ndarray:
        """Class indices: 0 normal / 1 attack, or an index into ``CATEGORIES``."""
        category = _CATEGORY_OF_ATTACK[self.attack]
        if check_labels(labels) == "binary":
            return (category != 0).astype(np.int64)
        return category


def _cell_problem(col: int, name: str, text: str, constraint: int) -> str | None:
    """Why the numeric cell ``text`` is invalid, or ``None`` when it is fine."""
    where = f"column {col + 1} ({name})"
    if not text.strip():
        return f"{where}: missing value (empty cell)"
    try:
        value = float(text)
    except ValueError:
        return f"{where}: value {text!r} is not a number"
    if not np.isfinite(value):
        return f"{where}: value {text!r} is not finite"
    ok = {
        _COUNT: 0 <= value <= _COUNT_MAX and value == int(value),
        _FLAG: value in (0.0, 1.0),
        _RATE: 0.0 <= value <= 1.0,
        _DIFFICULTY: value == int(value) and 0 <= value <= _DIFFICULTY_MAX,
    }[constraint]
    return None if ok else f"{where}: value {text!r} is not {_CONSTRAINT_TEXT[constraint]}"


class _RowChecker:
    """Row validation for one KDD layout (NSL-KDD: 43 columns, KDD Cup: 42)."""

    def __init__(self, difficulty: bool) -> None:
        self.n_columns = 43 if difficulty else 42
        self.difficulty = difficulty
        # Numeric columns that are validated and converted in bulk; the difficulty column (if
        # any) is validated like them and discarded afterwards.
        self.num_cols: tuple[int, ...] = NUMERIC_COLUMNS + ((42,) if difficulty else ())
        names = [FEATURE_NAMES[i] for i in NUMERIC_COLUMNS] + (["difficulty"] if difficulty
                                                                 else [])
        self.num_names: tuple[str, ...] = tuple(names)
        self.constraints = np.array(
            [_FLAG if n in BINARY_FEATURES else _RATE if n in RATE_FEATURES
             else _DIFFICULTY if n == "difficulty" else _COUNT for n in names], dtype=np.int8)
        self.vocab = [{v: k for k, v in enumerate(vocab)} for _, _, vocab in CATEGORICAL]
        self.attacks = {a: k for k, a in enumerate(ATTACK_NAMES)}

    def label_index(self, text: str) -> int | None:
        # KDD Cup labels end with a dot ("smurf."), NSL-KDD labels do not.
        return self.attacks.get(text[:-1] if text.endswith(".") else text)

    def cell_problem(self, k: int, text: str) -> str | None:
        """Why the ``k``-th numeric cell of a row is invalid, or ``None``."""
        return _cell_problem(self.num_cols[k], self.num_names[k], text, int(self.constraints[k]))

    def row_problem(self, fields: Sequence[str]) -> str | None:
        """The first problem of a row in column order, or ``None`` when the row is valid."""
        if len(fields) != self.n_columns:
            layout = "41 features, label, difficulty" if self.difficulty else "41 features, label"
            return (f"expected {self.n_columns} comma-separated columns ({layout}), "
                    f"found {len(fields)}")
        for col in range(self.n_columns):
            text = fields[col]
            if col in (1, 2, 3):
                _, name, vocab = CATEGORICAL[col - 1]
                if text not in self.vocab[col - 1]:
                    what = "missing value (empty cell)" if not text.strip() else \
                        f"unknown {name} {text!r} (not in the fixed {len(vocab)}-value vocabulary)"
                    return f"column {col + 1} ({name}): {what}"
            elif col == 41:
                if self.label_index(text) is None:
                    what = "missing value (empty cell)" if not text.strip() else \
                        f"unknown label {text!r} (not one of the {len(ATTACK_NAMES)} known " \
                        "attack names)"
                    return f"column 42 (label): {what}"
            else:
                problem = self.cell_problem(self.num_cols.index(col), text)
                if problem is not None:
                    return problem
        return None

    def bulk_invalid(self, values: np.ndarray) -> np.ndarray:
        """Bool ``(m,)``: rows of a converted numeric chunk that break a column constraint."""
        ok = np.isfinite(values)
        c = self.constraints
        integral = values == np.floor(values)
        ok &= np.where(c == _COUNT, (values >= 0) & (values <= _COUNT_MAX) & integral, True)
        ok &= np.where(c == _FLAG, (values == 0) | (values == 1), True)
        ok &= np.where(c == _RATE, (values >= 0) & (values <= 1), True)
        ok &= np.where(c == _DIFFICULTY, integral & (values >= 0) & (values <= _DIFFICULTY_MAX),
                       True)
        return ~ok.all(axis=1)


def _open_text(path: Path) -> Any:
    """Open a text file, transparently decompressing gzip (detected by the magic bytes 1f 8b).

    Latin-1 decoding never fails, so stray bytes surface as invalid values with a line number
    instead of an undiagnosable ``UnicodeDecodeError``.
    """
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="latin-1", newline=None)
    return open(path, encoding="latin-1", newline=None)


def read_kdd_file(path: str | Path, *, difficulty: bool,
                  on_bad_rows: OnBadRows = "raise") -> KddRecords:
    """Read and validate one KDD file (plain text or gzip).

    Every row is checked: the column count (43 with ``difficulty``, else 42), every numeric
    feature parses as a finite number (an empty cell is a missing value), integer counts are
    non-negative integers, flags are 0/1, rates lie in [0, 1], the three categorical values are
    in the fixed vocabularies, the label is a known attack name (a trailing dot, as in KDD Cup
    labels like ``smurf.``, is accepted) and the difficulty is an integer 0..21. Whitespace-only
    lines hold no record and are ignored (counted in ``blank_lines``).

    Args:
        path: the file.
        difficulty: the NSL-KDD layout with a trailing difficulty column.
        on_bad_rows: ``"raise"`` raises :class:`DataFormatError` for the first malformed row
            (file, 1-based line, column name and value); ``"skip"`` skips malformed rows and
            counts them in :attr:`KddRecords.skipped_rows` (the caller warns and records it).

    Raises:
        DataFormatError: a malformed row (with ``"raise"``), an empty file, a file with no valid
            row, or a corrupt gzip stream.
    """
    path = Path(path)
    checker = _RowChecker(difficulty)
    bad_rows = BadRows(path, on_bad_rows)
    n_num = len(checker.num_cols)
    vocab_p, vocab_s, vocab_f = checker.vocab
    attacks = checker.attacks
    label_index = checker.label_index
    n_columns = checker.n_columns

    numeric_parts: list[np.ndarray] = []
    cat_parts: list[np.ndarray] = []
    attack_parts: list[np.ndarray] = []
    flat: list[str] = []
    cats: list[int] = []
    labels: list[int] = []
    lines: list[int] = []
    blank = 0

    def flush() -> None:
        if not lines:
            return
        m = len(lines)
        try:
            values = np.array(flat, dtype=np.float64).reshape(m, n_num)
            invalid = checker.bulk_invalid(values)
        except ValueError:  # some cell is not a number: find the rows one by one below
            values = np.full((m, n_num), np.nan)
            invalid = np.ones(m, dtype=bool)
        keep = ~invalid
        for r in np.flatnonzero(invalid):
            cells = flat[r * n_num:(r + 1) * n_num]
            for k, text in enumerate(cells):
                problem = checker.cell_problem(k, text)
                if problem is not None:
                    bad_rows.report(lines[r], problem)
                    break
            else:  # the bulk conversion failed on another row; this one is fine
                values[r] = [float(t) for t in cells]
                keep[r] = True
        numeric_parts.append(values[keep, :38])
        cat_parts.append(np.array(cats, dtype=np.int64).reshape(m, 3)[keep])
        attack_parts.append(np.array(labels, dtype=np.int64)[keep])
        flat.clear()
        cats.clear()
        labels.clear()
        lines.clear()

    lineno = 0
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                fields = line.rstrip("\r\n").split(",")
                if len(fields) == n_columns:
                    p = vocab_p.get(fields[1])
                    s = vocab_s.get(fields[2])
                    f = vocab_f.get(fields[3])
                    a = attacks.get(fields[41])
                    if a is None:
                        a = label_index(fields[41])
                    if p is not None and s is not None and f is not None and a is not None:
                        flat.append(fields[0])
                        flat.extend(fields[4:41])
                        if difficulty:
                            flat.append(fields[42])
                        cats.extend((p, s, f))
                        labels.append(a)
                        lines.append(lineno)
                        if len(lines) >= _CHUNK_ROWS:
                            flush()
                        continue
                if not line.strip():
                    blank += 1
                    continue
                flush()  # earlier rows first, so "raise" reports the first bad line of the file
                problem = checker.row_problem(fields)
                assert problem is not None
                bad_rows.report(lineno, problem)
            flush()
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(path, lineno + 1 if lineno else None,
                              f"cannot read the file (corrupt or truncated gzip?): {exc}") from exc

    if sum(len(a) for a in attack_parts) == 0:
        raise bad_rows.no_valid_rows("the file is empty (no records)")
    return KddRecords(
        numeric=np.concatenate(numeric_parts),
        categorical=np.concatenate(cat_parts),
        attack=np.concatenate(attack_parts),
        skipped_rows=bad_rows.skipped,
        skipped_lines=bad_rows.lines,
        blank_lines=blank,
    )

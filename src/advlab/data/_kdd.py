"""Shared parsing, encoding and domain construction for NSL-KDD and KDD Cup 1999.

Both data sets describe TCP/IP connection records with the same 41 features (Stolfo et al., KDD
Cup 1999; NSL-KDD by Tavallaee et al., "A Detailed Analysis of the KDD CUP 99 Data Set", CISDA
2009). This module holds what the two loaders share:

* the 41 feature names and the *fixed* vocabularies of the three categorical features, so the
  one-hot encoding never depends on which values a particular file happens to contain (``tftp_u``
  occurs in KDDTest+ but not in the 20 % training file);
* the standard mapping from attack name to the categories normal / DoS / Probe / R2L / U2R,
  including the 17 attacks that occur only in the test files;
* a strict, fast reader (:func:`read_kdd_file`) that validates every row and reports malformed
  ones with file, line, column and value;
* the encoding (:func:`encode`): numeric features scaled with *training* statistics, one-hot
  categories, and the :class:`~advlab.domain.Domain` an attacker must stay in.

Encoding, in feature order (122 features, 121 with ``drop_constant=True``):

1. The 38 numeric features in their original column order.

   * Binary flags (``land``, ``logged_in``, ``root_shell``, ``is_host_login``,
     ``is_guest_login``) and the 15 ``*_rate`` fractions have a known range [0, 1] and are kept
     as they are (min-max with the a-priori range instead of the training range). The reader
     checks the flags are 0/1 and the rates lie in [0, 1]. This matters for ``is_host_login``,
     which is constant 0 in the NSL-KDD 20 % training file and the KDD Cup 10 % file but 1 in some
     test rows: training statistics would erase it.
   * Heavy-tailed features (:data:`LOG1P_FEATURES`: ``duration``, ``src_bytes``, ``dst_bytes``,
     ``hot``, ``num_compromised``, ``num_root``, ``num_file_creations``) go through ``log1p``
     before min-max. Their raw maxima are in the tens to billions while the bulk of the values is
     0 or small, so a linear min-max would squash almost every record to ~0. The list is fixed
     (chosen from the documented value ranges of the KDD files), never derived from the data, so
     the encoding of a record does not depend on which file was loaded. These features become
     ``"continuous"`` in the domain: the log scale has no uniform integer grid.
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

import gzip
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from advlab.data.base import DataFormatError, OnBadRows
from advlab.domain import Domain, Kind

LabelMode = Literal["binary", "5class"]

FEATURE_NAMES: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
"""The 41 connection features, in file column order."""

PROTOCOLS: tuple[str, ...] = ("icmp", "tcp", "udp")
SERVICES: tuple[str, ...] = (
    "IRC", "X11", "Z39_50", "aol", "auth", "bgp", "courier", "csnet_ns", "ctf", "daytime",
    "discard", "domain", "domain_u", "echo", "eco_i", "ecr_i", "efs", "exec", "finger", "ftp",
    "ftp_data", "gopher", "harvest", "hostnames", "http", "http_2784", "http_443", "http_8001",
    "imap4", "iso_tsap", "klogin", "kshell", "ldap", "link", "login", "mtp", "name",
    "netbios_dgm", "netbios_ns", "netbios_ssn", "netstat", "nnsp", "nntp", "ntp_u", "other",
    "pm_dump", "pop_2", "pop_3", "printer", "private", "red_i", "remote_job", "rje", "shell",
    "smtp", "sql_net", "ssh", "sunrpc", "supdup", "systat", "telnet", "tftp_u", "tim_i", "time",
    "urh_i", "urp_i", "uucp", "uucp_path", "vmnet", "whois",
)
FLAGS: tuple[str, ...] = ("OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF",
                          "SH")
CATEGORICAL: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "protocol_type", PROTOCOLS), (2, "service", SERVICES), (3, "flag", FLAGS))
"""(column index, name, fixed vocabulary) of the three categorical features."""

NUMERIC_COLUMNS: tuple[int, ...] = tuple(i for i in range(41) if i not in (1, 2, 3))
NUMERIC_NAMES: tuple[str, ...] = tuple(FEATURE_NAMES[i] for i in NUMERIC_COLUMNS)

BINARY_FEATURES: tuple[str, ...] = ("land", "logged_in", "root_shell", "is_host_login",
                                    "is_guest_login")
"""0/1 flags: kept as they are, kind ``"binary"``."""
RATE_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n.endswith("_rate"))
"""Fractions in [0, 1]: kept as they are, kind ``"continuous"``."""
LOG1P_FEATURES: tuple[str, ...] = ("duration", "src_bytes", "dst_bytes", "hot",
                                   "num_compromised", "num_root", "num_file_creations")
"""Heavy-tailed counts (raw maxima from ~100 to ~1e9, mostly 0): ``log1p`` before min-max."""
COUNT_FEATURES: tuple[str, ...] = tuple(
    n for n in NUMERIC_NAMES if n not in BINARY_FEATURES + RATE_FEATURES + LOG1P_FEATURES)
"""Integer counts scaled linearly: kind ``"integer"`` with resolution ``1 / (max - min)``."""
CONSTANT_FEATURES: tuple[str, ...] = ("num_outbound_cmds",)
"""Always 0 in every KDD file; removed by ``drop_constant=True``."""

CATEGORIES: tuple[str, ...] = ("normal", "DoS", "Probe", "R2L", "U2R")
BINARY_CLASSES: tuple[str, ...] = ("normal", "attack")

_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "normal": ("normal",),
    "DoS": ("back", "land", "neptune", "pod", "smurf", "teardrop",
            "apache2", "mailbomb", "processtable", "udpstorm"),
    "Probe": ("ipsweep", "nmap", "portsweep", "satan", "mscan", "saint"),
    "R2L": ("ftp_write", "guess_passwd", "imap", "multihop", "phf", "spy", "warezclient",
            "warezmaster", "named", "sendmail", "snmpgetattack", "snmpguess", "worm", "xlock",
            "xsnoop"),
    # httptunnel is grouped with U2R: this is the grouping that yields the published KDDTest+
    # counts 9,711 / 7,458 / 2,421 / 2,754 / 200 (with httptunnel in R2L they are
    # ... / 2,887 / 67).
    "U2R": ("buffer_overflow", "loadmodule", "perl", "rootkit",
            "httptunnel", "ps", "sqlattack", "xterm"),
}
ATTACK_CATEGORY: dict[str, str] = {a: c for c, names in _BY_CATEGORY.items() for a in names}
"""Attack name (as in the NSL-KDD files) -> one of :data:`CATEGORIES`."""
ATTACK_NAMES: tuple[str, ...] = tuple(ATTACK_CATEGORY)
TEST_ONLY_ATTACKS: tuple[str, ...] = (
    "apache2", "mailbomb", "processtable", "udpstorm", "mscan", "saint", "httptunnel", "named",
    "sendmail", "snmpgetattack", "snmpguess", "worm", "xlock", "xsnoop", "ps", "sqlattack",
    "xterm")
"""The 17 attacks that occur in the KDD test files but not in the training files."""

_CATEGORY_OF_ATTACK = np.array([CATEGORIES.index(ATTACK_CATEGORY[a]) for a in ATTACK_NAMES],
                               dtype=np.int64)

_CHUNK_ROWS = 50_000
_VALIDATE_ROWS = 65_536
_MAX_SKIPPED_LINES = 20
_DIFFICULTY_MAX = 21

# Constraint codes of the validated numeric columns.
_COUNT, _FLAG, _RATE, _DIFFICULTY = 0, 1, 2, 3
_CONSTRAINT_TEXT = {
    _COUNT: "a non-negative integer count",
    _FLAG: "0 or 1",
    _RATE: "a rate in [0, 1]",
    _DIFFICULTY: f"an integer difficulty level 0..{_DIFFICULTY_MAX}",
}


@dataclass
class KddRecords:
    """Validated raw records of one KDD file (or a row subset of one).

    Attributes:
        numeric: ``(n, 38)`` float64, the numeric features in :data:`NUMERIC_NAMES` order.
        categorical: ``(n, 3)`` int64 codes into :data:`PROTOCOLS`, :data:`SERVICES`,
            :data:`FLAGS`.
        attack: ``(n,)`` int64 index into :data:`ATTACK_NAMES`.
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
        """Class indices: 0 normal / 1 attack, or an index into :data:`CATEGORIES`."""
        category = _CATEGORY_OF_ATTACK[self.attack]
        if labels == "binary":
            return (category != 0).astype(np.int64)
        if labels == "5class":
            return category
        raise ValueError(f"labels must be 'binary' or '5class', got {labels!r}")


def check_labels(labels: str) -> LabelMode:
    if labels not in ("binary", "5class"):
        raise ValueError(f"labels must be 'binary' or '5class', got {labels!r}")
    return labels  # type: ignore[return-value]


def check_on_bad_rows(on_bad_rows: str) -> OnBadRows:
    if on_bad_rows not in ("raise", "skip"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")
    return on_bad_rows  # type: ignore[return-value]


# ---------------------------------------------------------------------------------- reading
class _RowSink:
    """Raises on the first bad row (``"raise"``) or counts and skips bad rows (``"skip"``)."""

    def __init__(self, path: Path, on_bad_rows: OnBadRows) -> None:
        self.path, self.on_bad_rows = path, on_bad_rows
        self.skipped = 0
        self.lines: list[int] = []

    def bad(self, line: int, problem: str) -> None:
        if self.on_bad_rows == "raise":
            raise DataFormatError(self.path, line, problem)
        self.skipped += 1
        if len(self.lines) < _MAX_SKIPPED_LINES:
            self.lines.append(line)


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
        _COUNT: value >= 0 and value == int(value),
        _FLAG: value in (0.0, 1.0),
        _RATE: 0.0 <= value <= 1.0,
        _DIFFICULTY: value == int(value) and 0 <= value <= _DIFFICULTY_MAX,
    }[constraint]
    return None if ok else f"{where}: value {text!r} is not {_CONSTRAINT_TEXT[constraint]}"


class _Reader:
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
                k = self.num_cols.index(col)
                problem = _cell_problem(col, self.num_names[k], text, int(self.constraints[k]))
                if problem is not None:
                    return problem
        return None

    def bulk_invalid(self, values: np.ndarray) -> np.ndarray:
        """Bool ``(m,)``: rows of a converted numeric chunk that break a column constraint."""
        ok = np.isfinite(values)
        c = self.constraints
        integral = values == np.floor(values)
        ok &= np.where(c == _COUNT, (values >= 0) & integral, True)
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
    reader = _Reader(difficulty)
    sink = _RowSink(path, on_bad_rows)
    n_num = len(reader.num_cols)
    vocab_p, vocab_s, vocab_f = reader.vocab
    attacks = reader.attacks
    label_index = reader.label_index
    n_columns = reader.n_columns

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
            invalid = reader.bulk_invalid(values)
        except ValueError:  # some cell is not a number: find the rows one by one below
            values = np.full((m, n_num), np.nan)
            invalid = np.ones(m, dtype=bool)
        keep = ~invalid
        for r in np.flatnonzero(invalid):
            cells = flat[r * n_num:(r + 1) * n_num]
            for k, text in enumerate(cells):
                problem = _cell_problem(reader.num_cols[k], reader.num_names[k], text,
                                        int(reader.constraints[k]))
                if problem is not None:
                    sink.bad(lines[r], problem)
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
                problem = reader.row_problem(fields)
                assert problem is not None
                sink.bad(lineno, problem)
            flush()
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(path, lineno + 1 if lineno else None,
                              f"cannot read the file (corrupt or truncated gzip?): {exc}") from exc

    n_rows = sum(len(a) for a in attack_parts)
    if n_rows == 0:
        if sink.skipped:
            raise DataFormatError(path, sink.lines[0], f"no valid rows: all {sink.skipped} rows "
                                  "are malformed (the first is at this line)")
        raise DataFormatError(path, None, "the file is empty (no records)")
    return KddRecords(
        numeric=np.concatenate(numeric_parts),
        categorical=np.concatenate(cat_parts),
        attack=np.concatenate(attack_parts),
        skipped_rows=sink.skipped,
        skipped_lines=sink.lines,
        blank_lines=blank,
    )


def warn_skipped(path: Path, records: KddRecords) -> None:
    """Warn how many malformed rows of ``path`` were skipped (nothing when none were)."""
    if records.skipped_rows:
        warnings.warn(f"{path}: skipped {records.skipped_rows} malformed row(s) "
                      f"(first at line(s) {records.skipped_lines[:5]})", stacklevel=3)


# ---------------------------------------------------------------------------------- encoding
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

    seen = [set(np.unique(train.categorical[:, k]).tolist()) for k in range(3)]
    unseen = [f"{name}={vocab[c]}" for k, (_, name, vocab) in enumerate(CATEGORICAL)
              for c in sorted(set(np.unique(test.categorical[:, k]).tolist()) - seen[k])]
    train_attacks = set(np.unique(train.attack).tolist())
    test_only = sorted(ATTACK_NAMES[a] for a in set(np.unique(test.attack).tolist())
                       - train_attacks)
    info: dict[str, Any] = {
        "labels": labels,
        "n_features": n_features,
        "encoding": f"{n_num} numeric features (original column order), then one-hot "
                    "protocol_type (3), service (70), flag (11) on fixed vocabularies",
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


def class_names(labels: LabelMode) -> tuple[str, ...]:
    return BINARY_CLASSES if labels == "binary" else CATEGORIES


def find_file(path: Path, patterns: Sequence[str], what: str) -> Path:
    """``path`` itself when it is a file, else the single file in it matching a pattern."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: {path} does not exist")
    for pattern in patterns:
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise FileNotFoundError(f"{what}: several files in {path} match {pattern!r}: "
                                    f"{[p.name for p in found]}; pass the file itself")
    raise FileNotFoundError(f"{what}: no file in {path} matches {list(patterns)}")

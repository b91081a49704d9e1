"""Shared by the loaders of text data files: finding the file, and handling malformed rows.

A malformed row either stops the load with a :class:`~advlab.data.base.DataFormatError` naming
the file, the 1-based line and the problem (``on_bad_rows="raise"``, the default), or is skipped
and counted (``on_bad_rows="skip"``): the loader then warns with the number of skipped rows and
their first line numbers and records the number in ``info["skipped_rows"]``. A file without a
single valid row is an error either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from advlab.data.base import DataFormatError

OnBadRows = Literal["raise", "skip"]

MAX_SKIPPED_LINES = 20
"""How many line numbers of skipped rows are remembered (the count is always exact)."""


def check_on_bad_rows(on_bad_rows: str) -> OnBadRows:
    """``on_bad_rows`` itself when it is ``"raise"`` or ``"skip"``, else a :class:`ValueError`."""
    if on_bad_rows not in ("raise", "skip"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")
    return on_bad_rows  # type: ignore[return-value]


class BadRows:
    """Raises on the first bad row (``"raise"``) or counts and skips bad rows (``"skip"``).

    Attributes:
        skipped: the number of skipped rows.
        lines: the line numbers of the first :data:`MAX_SKIPPED_LINES` skipped rows.
    """

    def __init__(self, path: Path, on_bad_rows: OnBadRows) -> None:
        self.path, self.on_bad_rows = path, on_bad_rows
        self.skipped = 0
        self.lines: list[int] = []

    def report(self, line: int, problem: str) -> None:
        """A malformed row at ``line``: raise :class:`DataFormatError`, or count it."""
        if self.on_bad_rows == "raise":
            raise DataFormatError(self.path, line, problem)
        self.skipped += 1
        if len(self.lines) < MAX_SKIPPED_LINES:
            self.lines.append(line)

    def no_valid_rows(self, empty: str) -> DataFormatError:
        """The error for a file that yielded no row: every row skipped, or ``empty``."""
        if self.skipped:
            return DataFormatError(self.path, self.lines[0], f"no valid rows: all {self.skipped} "
                                   "rows are malformed (the first is at this line)")
        return DataFormatError(self.path, None, empty)


def warn_skipped(path: Path, skipped: int, lines: Sequence[int], *, stacklevel: int = 2) -> None:
    """Warn how many malformed rows of ``path`` were skipped (nothing when none were).

    ``stacklevel`` counts from the caller of this function, as in :func:`warnings.warn`: the
    default 2 points at the code that called the loader.
    """
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} malformed row(s) "
                      f"(first at line(s) {list(lines[:5])})", stacklevel=stacklevel + 1)


def find_file(path: Path, patterns: Sequence[str], what: str) -> Path:
    """``path`` itself when it is a file, else the single file in it matching a pattern.

    The patterns are tried in order; the first that matches any file decides: a single match is
    returned, several are an error.

    Raises:
        FileNotFoundError: ``path`` does not exist, no file matches, or a pattern matches
            several files (named in the message).
    """
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

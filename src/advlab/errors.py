"""advlab's own error types: one home for every error that reports bad user input.

Every class is a :class:`ValueError`, so ``except ValueError`` keeps working for callers that
do not care which. Errors about a file (:class:`FileFormatError` and its subclasses) carry the
file, the 1-based line where the file has lines (``None`` for binary files and whole-file
problems) and the problem, and their message reads ``path:line: problem``:

* :class:`DataFormatError`: a malformed data file (:mod:`advlab.data`).
* :class:`ModelFileError`: a model folder that is missing, incomplete or inconsistent, or a
  weights file that is not safe to read (:mod:`advlab.models.io`).

Errors of other files that advlab reads (run configurations, results files) belong here too, as
further subclasses of :class:`FileFormatError`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["AdvlabError", "DataFormatError", "FileFormatError", "ModelFileError"]


class AdvlabError(ValueError):
    """Base class of advlab's own errors: bad input, named with what is wrong and where."""


class FileFormatError(AdvlabError):
    """A file advlab reads is malformed. The message names the file, the line and the problem.

    Attributes:
        path: the file (or folder), as a string.
        line: the 1-based line, or ``None`` where the file has no lines or the problem is the
            whole file's.
        problem: what is wrong, without the location.
    """

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str]]:
        return type(self), (self.path, self.line, self.problem)  # picklable across processes


class DataFormatError(FileFormatError):
    """A data file is malformed (wrong header, bad row, corrupt gzip, bad IDX header...)."""


class ModelFileError(FileFormatError):
    """A model folder is missing, incomplete or inconsistent, or a weights file is unsafe or
    unreadable."""

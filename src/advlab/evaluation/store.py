"""The checkpoint store of an evaluation: one JSON line per batch, one results file per process.

A single process writes ``results.jsonl``; rank ``r`` of a sharded run writes
``results.rank{r}.jsonl``. Each file starts with a header (the schema, the run's fingerprint and
its configuration); each further line holds the per-sample records of one batch, appended and
fsynced as soon as the batch is done, so an interruption loses at most the batches in flight.

The folder is guarded: rank 0 (or the single process) holds an exclusive ``flock`` on
``.advlab.lock`` for the whole run, and every process holds one on the results file it appends
to, so a second run on the same folder is refused while the first lives; the kernel releases
the locks of a killed process, so a stale lock never blocks a resume. Starting a run into a
folder that holds one is refused unless asked to resume it or to overwrite it.

Resuming (:meth:`CheckpointStore.prepare`) reads every results file line by line, after checking
that its header's fingerprint is the run's own, and keeps a line only when it is a complete batch
record of the plan (:func:`advlab.evaluation.records.check_record`). A line cut off by the
interruption, a corrupt one (not UTF-8, not JSON, not a record of this plan) and a batch seen
twice are dropped with a :class:`ResumeWarning` naming the file and the line, and their batches
are recomputed. The merge (:meth:`CheckpointStore.records`) streams the records from disk in
batch order, without holding them in memory.
"""

from __future__ import annotations

import json
import os
import re
import socket
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from advlab.evaluation.plan import Plan
from advlab.evaluation.records import RecordError, check_record

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: no locking
    fcntl = None  # type: ignore[assignment]

RESULTS = "results.jsonl"
RANK_RESULTS = "results.rank{}.jsonl"
LOCK = ".advlab.lock"
OUTPUTS = ("summary.json", "timing.json", "report.html")
_RANK_FILE = re.compile(r"results\.rank(\d+)\.jsonl")
_HEADER_START = b'{"type":"header"'


class StoreError(ValueError):
    """A run folder that cannot be used as asked; the message names it (and the flag to use)."""


class ResumeError(StoreError):
    """A results file that belongs to another configuration, or is not an advlab results file;
    the message names the file and the line."""


class FolderInUse(StoreError):
    """Another live advlab process is writing the run folder."""


class RunExists(StoreError):
    """The folder already holds a run, and neither resume nor overwrite was asked for."""


class ResumeWarning(UserWarning):
    """Something a resume does that the user should know: a dropped line, nothing to resume."""


def result_files(folder: Path) -> list[Path]:
    """The results files of a run folder: ``results.jsonl``, then the ranks' in rank order."""
    if not folder.is_dir():
        return []
    ranks = sorted((int(m.group(1)), p) for p in folder.iterdir()
                   if (m := _RANK_FILE.fullmatch(p.name)))
    single = [folder / RESULTS] if (folder / RESULTS).is_file() else []
    return single + [p for _, p in ranks]


def check_folder(folder: str | Path, *, resume: bool, overwrite: bool,
                 lock: bool = True) -> list[Path]:
    """Refuse what a run into ``folder`` must not do, before it does anything: start over a run
    already there (without ``resume`` or ``overwrite``), resume a folder with a summary but no
    results, or (``lock``) write while another process holds the folder. Changes nothing;
    returns the folder's results files.

    Raises:
        RunExists, FolderInUse: the message names the folder and the flag to use.
    """
    folder = Path(folder)
    if lock and (folder / LOCK).is_file():
        with (folder / LOCK).open(encoding="utf-8") as f:
            _lock_or_fail(f, folder / LOCK, folder)  # released when the file closes
    files = result_files(folder)
    summary = folder / OUTPUTS[0]
    if not resume and (files or summary.exists()) and not overwrite:
        what = "a finished run (summary.json)" if summary.exists() else \
            f"an interrupted run ({', '.join(p.name for p in files)})"
        raise RunExists(f"{folder} already holds {what}; use --resume to continue it, "
                        "--overwrite to replace it, or another --out")
    if resume and not files and summary.exists():
        raise RunExists(f"{folder} holds a summary.json but no results file to resume from; "
                        "use --overwrite to replace it")
    for path in files if resume else []:
        with path.open("rb") as f:
            _header(path, f.readline())
    return files


class CheckpointStore:
    """The results files of one run in ``out_dir`` (``None``: keep nothing on disk).

    Args:
        out_dir: the run folder. plan: the run's plan (its fingerprint, batches and calls).
        rank, world: this process's rank and the number of processes.
        num_classes, n_features: what a record's labels and feature arrays must fit.
    """

    def __init__(self, out_dir: str | Path | None, plan: Plan, *, rank: int = 0, world: int = 1,
                 num_classes: int, n_features: int | None) -> None:
        self.folder = None if out_dir is None else Path(out_dir)
        self.plan, self.rank, self.world = plan, rank, world
        self.fingerprint = plan.fingerprint
        self.num_classes, self.n_features = num_classes, n_features
        name = RESULTS if world == 1 else RANK_RESULTS.format(rank)
        self.path = None if self.folder is None else self.folder / name
        self._file: IO[str] | None = None

    # ------------------------------------------------------------------ the folder as a whole
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock (rank 0 only; the other ranks lock their results files)."""
        if self.folder is None or self.rank != 0:
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with _flock(self.folder / LOCK, self.folder, owner=True):
            yield

    def prepare(self, *, resume: bool, overwrite: bool = False) -> list[int]:
        """Check the folder's state (rank 0, holding the lock) and return the batches already
        done: none for a fresh start; with ``resume``, those of every results file, checked
        line by line and repaired (see the module docstring)."""
        if self.folder is None:
            return []
        files = check_folder(self.folder, resume=resume, overwrite=overwrite, lock=False)
        if not resume:
            for path in files:
                with _flock(path, self.folder):
                    path.unlink()
            for name in OUTPUTS:
                (self.folder / name).unlink(missing_ok=True)
            return []
        if not files:
            warnings.warn(f"nothing to resume in {self.folder} (no results file), starting",
                          ResumeWarning, stacklevel=3)
            return []
        done: dict[int, str] = {}
        for path in files:
            self._repair(path, done)
        return sorted(done)

    # ------------------------------------------------------------------ this process's file
    def open(self, schema: str, config: Mapping[str, Any]) -> None:
        """Open this process's results file for appending (locked), with a header if new."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        _lock_or_fail(self._file, self.path, self.folder)
        if self._file.tell() == 0:
            self.append({"type": "header", "schema": schema, "fingerprint": self.fingerprint,
                         "rank": self.rank, "world_size": self.world, "pid": os.getpid(),
                         "host": socket.gethostname(), "config": dict(config)})

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line and flush it to disk."""
        if self._file is None:
            return
        self._file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None

    # ------------------------------------------------------------------ reading
    def records(self) -> StoredRecords:
        """Every batch record of the run, in batch order, read lazily from the results files.

        Raises:
            ResumeError: a batch is missing from the files (the run is incomplete).
        """
        assert self.folder is not None
        where: dict[int, tuple[Path, int]] = {}
        for path in result_files(self.folder):
            for b, offset in _batch_offsets(path):
                where.setdefault(b, (path, offset))
        missing = [b for b in range(len(self.plan.batches)) if b not in where]
        if missing:
            raise ResumeError(f"{self.folder}: batches {missing[:5]} are in no results file; "
                              "rerun with --resume to compute them")
        return StoredRecords([where[b] for b in range(len(self.plan.batches))])

    def _repair(self, path: Path, done: dict[int, str]) -> None:
        """Read ``path``; add its good batches to ``done``; drop (and say so) every other
        line, rewriting the file without them."""
        keep: list[tuple[int, int]] = []  # byte spans of the lines kept
        dropped: list[str] = []
        with path.open("rb") as f:
            offset, number = 0, 0
            for number, line in enumerate(f, 1):  # noqa: B007 - number is used after the loop
                start, offset = offset, offset + len(line)
                if number == 1:
                    if not self._header(path, line):
                        break
                    keep.append((start, offset))
                    continue
                problem = self._problem(line, path, number, done)
                if problem is None:
                    keep.append((start, offset))
                else:
                    dropped.append(problem)
        if number == 0 or not keep:
            warnings.warn(f"{path}:1: no complete header (the run stopped as it started); "
                          "starting this file afresh", ResumeWarning, stacklevel=4)
            with _flock(path, self.folder):
                path.unlink()
            return
        for message in dropped:
            warnings.warn(message, ResumeWarning, stacklevel=4)
        if dropped:
            _rewrite(path, keep, self.folder)

    def _header(self, path: Path, line: bytes) -> bool:
        """Check a file's first line; False for a header cut off as it was written."""
        item = _header(path, line)
        if item is None:
            return False
        if item.get("fingerprint") != self.fingerprint:
            raise ResumeError(f"{path}:1: written by a different configuration (attacks, eps, "
                              "samples or seed changed); remove the file, use --overwrite, or "
                              "use another --out")
        return True

    def _problem(self, line: bytes, path: Path, number: int, done: dict[int, str]) -> str | None:
        """Why line ``number`` cannot be kept (``None``: it is a good, new batch record)."""
        where = f"{path}:{number}"
        if not line.endswith(b"\n"):
            return (f"{where}: incomplete last line (a write cut off by the interruption); "
                    "dropping it: its batch will be recomputed")
        try:
            item = json.loads(line.decode("utf-8"))
            b = check_record(item, self.plan, num_classes=self.num_classes,
                             n_features=self.n_features)
        except UnicodeDecodeError as err:
            reason = f"not UTF-8: byte 0x{line[err.start]:02x} at column {err.start + 1}"
        except json.JSONDecodeError as err:
            reason = f"not JSON: {err.msg} at column {err.colno}"
        except RecursionError:
            reason = "not JSON: nested too deeply"
        except RecordError as err:
            reason = str(err)
        else:
            if b in done:
                return f"{where}: batch {b} again (first in {done[b]}); dropping the repeat"
            done[b] = where
            return None
        return f"{where}: corrupt record ({reason}); dropping it: its batch will be recomputed"


class StoredRecords(Sequence[dict[str, Any]]):
    """Batch records on disk, in batch order; each is parsed when it is read."""

    def __init__(self, places: list[tuple[Path, int]]) -> None:
        self._places = places

    def __len__(self) -> int:
        return len(self._places)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        path, offset = self._places[i]
        with path.open("rb") as f:
            f.seek(offset)
            return json.loads(f.readline())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        files: dict[Path, IO[bytes]] = {}
        try:
            for path, offset in self._places:
                f = files.get(path) or files.setdefault(path, path.open("rb"))
                f.seek(offset)
                yield json.loads(f.readline())
        finally:
            for f in files.values():
                f.close()


def _header(path: Path, line: bytes) -> dict[str, Any] | None:
    """The header a results file's first line holds (``None``: one cut off as it was written,
    or no line at all).

    Raises:
        ResumeError: the line is not an advlab header.
    """
    if not line.endswith(b"\n") and _HEADER_START.startswith(line[:len(_HEADER_START)]):
        return None
    try:
        item = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        item = None
    if not isinstance(item, dict) or item.get("type") != "header":
        raise ResumeError(f"{path}:1: not an advlab results file (no header line); remove it "
                          "or use another --out")
    return item


def _batch_offsets(path: Path) -> Iterator[tuple[int, int]]:
    """``(batch, byte offset)`` of every batch line of a checked results file."""
    with path.open("rb") as f:
        offset = 0
        for line in f:
            if line.endswith(b"\n") and not line.startswith(_HEADER_START):
                yield int(json.loads(line)["batch"]), offset
            offset += len(line)


def _rewrite(path: Path, keep: list[tuple[int, int]], folder: Path | None) -> None:
    """Rewrite ``path`` with only the byte spans ``keep``, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with _flock(path, folder), path.open("rb") as src, tmp.open("wb") as dst:
        for start, end in keep:
            src.seek(start)
            dst.write(src.read(end - start))
        dst.flush()
        os.fsync(dst.fileno())
        os.replace(tmp, path)


@contextmanager
def _flock(path: Path, folder: Path | None, *, owner: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed); ``owner`` writes who holds it."""
    with path.open("a+", encoding="utf-8") as f:
        _lock_or_fail(f, path, folder)
        if owner:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
        yield


def _lock_or_fail(f: IO[str], path: Path, folder: Path | None) -> None:
    """An exclusive, non-blocking ``flock`` on ``f``, or :class:`FolderInUse`."""
    if fcntl is None:
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        if path.name == LOCK:
            holder = path.read_text(encoding="utf-8", errors="replace").strip()
        raise FolderInUse(f"{folder}: in use by another advlab process"
                          f"{f' ({holder})' if holder else ''} writing {path.name}; wait for "
                          "it to finish or use another --out") from None

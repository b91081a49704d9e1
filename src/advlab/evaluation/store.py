"""The checkpoint store of an evaluation: ``results.jsonl``, one JSON line per batch.

The first line is a header with the schema, the run's fingerprint and its configuration; each
further line holds the per-sample records of one batch, appended and fsynced as soon as the
batch is done, so an interruption loses at most the batch in flight. Resuming reads the complete
batch lines back, after checking that the header's fingerprint is the run's own, and cuts a line
torn by the interruption off the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"


class ResumeError(ValueError):
    """``results.jsonl`` belongs to another configuration, or is not an advlab results file."""


class CheckpointStore:
    """``out_dir/results.jsonl`` for one run (``out_dir=None``: keep nothing on disk)."""

    def __init__(self, out_dir: str | Path | None, fingerprint: str) -> None:
        self.path = None if out_dir is None else Path(out_dir) / RESULTS
        self.fingerprint = fingerprint

    def start(self, schema: str, config: Mapping[str, Any], *,
              resume: bool) -> list[dict[str, Any]]:
        """Begin the file with its header, or, with ``resume``, return the batch records already
        in it (after checking its fingerprint)."""
        if self.path is None:
            return []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            return self.read()
        if self.path.exists():
            self.path.unlink()
        self.append({"type": "header", "schema": schema, "fingerprint": self.fingerprint,
                     "config": dict(config)})
        return []

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line and flush it to disk."""
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict[str, Any]]:
        """The complete batch records; a torn last line is cut off the file."""
        assert self.path is not None
        path, good, keep, header = self.path, [], 0, None
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line torn by the interruption: it and anything after are dropped
                if not line.endswith(b"\n"):
                    break
                if number == 1:
                    header = item
                    if item.get("type") != "header":
                        raise ResumeError(f"{path}:1: not an advlab results file (no header "
                                          "line)")
                    if item.get("fingerprint") != self.fingerprint:
                        raise ResumeError(f"{path}:1: written by a different configuration "
                                          "(attacks, eps, samples or seed changed); remove the "
                                          "file or use another output folder")
                elif item.get("type") == "batch":
                    good.append(item)
                keep += len(line)
        if header is None:
            raise ResumeError(f"{path}: empty or unreadable; cannot resume")
        with path.open("r+b") as f:
            f.truncate(keep)
        return good

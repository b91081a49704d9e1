"""The checkpoint store: what a resume does with damaged results files (it names the file and
the line, says what happens, and never drops a record silently), the folder lock, and a fuzz
test of the reader: whatever the bytes, only advlab's own error type comes out."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advlab.data import load
from advlab.evaluation import evaluate
from advlab.evaluation.plan import make_plan
from advlab.evaluation.records import check_record
from advlab.evaluation.store import (
    CheckpointStore,
    FolderInUse,
    ResumeError,
    ResumeWarning,
    RunExists,
    check_folder,
)
from advlab.models import train_classifier

ATTACKS = ["fgsm", {"name": "pgd", "steps": 3}]
GRID = {"linf": [0.1, 0.3]}
KW = dict(n=20, batch_size=5, seed=2, progress=False, checks=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run's folder, its plan and the data set."""
    data = load("digits")
    torch.manual_seed(0)
    model = train_classifier(data, "mlp", epochs=2, val_fraction=0, progress=False).model
    out = tmp_path_factory.mktemp("run")
    ev = evaluate(model, data, ATTACKS, GRID, out_dir=out, **KW)
    plan = make_plan(data, ATTACKS, GRID, n=KW["n"], batch_size=KW["batch_size"],
                     seed=KW["seed"], split="test", device=torch.device("cpu"))
    return model, data, out, plan, ev


def _store(folder: Path, plan, data) -> CheckpointStore:
    return CheckpointStore(folder, plan, num_classes=data.num_classes, n_features=64)


def _prepare(folder: Path, plan, data) -> tuple[list[int], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = _store(folder, plan, data).prepare(resume=True)
    return done, [str(w.message) for w in caught if issubclass(w.category, ResumeWarning)]


def _copy(run, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "results.jsonl").write_bytes((run[2] / "results.jsonl").read_bytes())
    return folder / "results.jsonl"


def test_non_utf8_middle_line_is_named_dropped_and_recomputed(run, tmp_path) -> None:
    model, data, _, plan, ev = run
    path = _copy(run, tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2][:31] + b"\xff" + lines[2][32:]  # batch 1, the byte of the issue report
    path.write_bytes(b"".join(lines))
    done, said = _prepare(path.parent, plan, data)
    assert done == [0, 2, 3]
    assert said == [f"{path}:3: corrupt record (not UTF-8: byte 0xff at column 32); dropping "
                    "it: its batch will be recomputed"]
    assert len(path.read_bytes().splitlines()) == 4  # header + the 3 good batches, rewritten
    resumed = evaluate(model, data, ATTACKS, GRID, out_dir=path.parent, resume=True, **KW)
    assert (path.parent / "summary.json").read_bytes() == (run[2] / "summary.json").read_bytes()
    assert sorted(r["batch"] for r in resumed.records) == [0, 1, 2, 3]


def test_readable_but_corrupt_middle_line_is_not_dropped_silently(run, tmp_path) -> None:
    _, data, _, plan, _ = run
    path = _copy(run, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[3])
    record["runs"][1]["success"] = record["runs"][1]["success"][:-1]  # one sample short
    lines[3] = json.dumps(record) + "\n"
    path.write_text("".join(lines))
    done, said = _prepare(path.parent, plan, data)
    assert done == [0, 1, 3]
    assert len(said) == 1 and said[0].startswith(f"{path}:4: corrupt record (batch 2, fgsm at "
                                                 "eps 0.3: success must be a list of 5 booleans")
    assert said[0].endswith("its batch will be recomputed")


def test_a_repeated_batch_is_dropped_with_a_warning(run, tmp_path) -> None:
    _, data, _, plan, _ = run
    path = _copy(run, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + [lines[1]]))
    done, said = _prepare(path.parent, plan, data)
    assert done == [0, 1, 2, 3]
    assert said == [f"{path}:6: batch 0 again (first in {path}:2); dropping the repeat"]
    assert path.read_text() == "".join(lines)


def test_bad_header_is_an_error_naming_the_file_and_line(run, tmp_path) -> None:
    _, data, _, plan, _ = run
    path = _copy(run, tmp_path)
    before = b"\xff" + path.read_bytes()[1:]
    path.write_bytes(before)
    with pytest.raises(ResumeError, match=re.escape(f"{path}:1: not an advlab results file")):
        _store(path.parent, plan, data).prepare(resume=True)
    assert path.read_bytes() == before  # nothing was written


def test_refusals_name_the_flag_and_change_nothing(run, tmp_path) -> None:
    _, data, out, plan, _ = run
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(RunExists, match="already holds a finished run .*use --resume"):
        check_folder(out, resume=False, overwrite=False)
    with pytest.raises(RunExists, match="--overwrite"):
        _store(out, plan, data).prepare(resume=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    empty = tmp_path / "nothing-here"
    done, said = _prepare(empty, plan, data)
    assert done == [] and said == [f"nothing to resume in {empty} (no results file), starting"]


def test_the_lock_refuses_a_second_writer_and_dies_with_its_holder(run, tmp_path) -> None:
    _, data, _, plan, _ = run
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         f"f = open({str(tmp_path / '.advlab.lock')!r}, 'a+')\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\nf.write('pid 1234 on elsewhere\\n'); f.flush()\n"
         "print('locked', flush=True)\ntime.sleep(600)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderInUse, match=r"in use by another advlab process \(pid 1234 "
                           r"on elsewhere\) writing \.advlab\.lock"):
            check_folder(tmp_path, resume=True, overwrite=False)
        with pytest.raises(FolderInUse), _store(tmp_path, plan, data).locked():
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with _store(tmp_path, plan, data).locked():  # the kernel released the dead holder's lock
        assert (tmp_path / ".advlab.lock").read_text().startswith(f"pid {os.getpid()} ")


def _mutate(data: st.DataObject, original: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "swap", "bytes"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=300))
    i = data.draw(st.integers(0, len(original) - 1))
    if kind == "flip":
        return original[:i] + bytes([data.draw(st.integers(0, 255))]) + original[i + 1:]
    if kind == "delete":
        return original[:i] + original[i + data.draw(st.integers(1, 200)):]
    if kind == "insert":
        return original[:i] + data.draw(st.binary(min_size=1, max_size=40)) + original[i:]
    if kind == "truncate":
        return original[:i]
    lines = original.splitlines(keepends=True)
    a, b = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
    lines[a], lines[b] = lines[b], lines[a]
    return b"".join(lines)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_results_files_give_only_advlab_errors_with_file_and_line(run, tmp_path,
                                                                          data) -> None:
    _, dataset, out, plan, _ = run
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    path = folder / "results.jsonl"
    path.write_bytes(_mutate(data, (out / "results.jsonl").read_bytes()))
    try:
        done, said = _prepare(folder, plan, dataset)
    except ResumeError as err:
        assert str(err).startswith(f"{path}:1: ")
        return
    assert all(re.match(rf"{re.escape(str(path))}:\d+: ", s) for s in said), said
    assert set(done) <= {0, 1, 2, 3}
    if path.exists():  # what is kept is complete records of the plan, each batch once
        lines = path.read_bytes().splitlines(keepends=True)
        assert all(line.endswith(b"\n") for line in lines)
        kept = [check_record(json.loads(line), plan, num_classes=10, n_features=64)
                for line in lines[1:]]
        assert sorted(kept) == done

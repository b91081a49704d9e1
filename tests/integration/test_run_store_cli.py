"""`advlab evaluate`'s run folder from the command line (issue 19, items 3, 8, 9, 10): each test
asserts the exit code, the one-line message, and that nothing was written where nothing should
be. The runs that are killed are subprocesses, so that SIGKILL is a real kill; the others call
the CLI's ``main`` in this process.

All ``slow`` (``make test-all``): the default suite keeps one SIGKILL-then-resume test (of a rank
of a sharded run, tests/integration/test_distributed.py), and tests/unit/test_store.py checks
the same refusals, repairs and locks on the store in process."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from advlab.cli import main
from cli_runs import ADVLAB, ENV, run, train_digits_mlp

BATCHES = 12


def call(capsys, *args: str) -> tuple[int, str, str]:
    """``advlab ARGS`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()
            if p.is_file()}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return train_digits_mlp(tmp_path_factory.mktemp("model"))


def flags(model: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model", str(model), "--n", str(10 * BATCHES), "--batch-size", "10",
            "--seed", "1", "--attack", "fgsm", "--attack", "pgd:steps=40,early_stop=false",
            "--eps", "linf=0.05,0.1", "--out", str(out), "--quiet", *extra]


@pytest.fixture(scope="module")
def full(model, tmp_path_factory) -> Path:
    """An uninterrupted run: the reference."""
    out = tmp_path_factory.mktemp("full") / "run"
    assert main(flags(model, out)) == 0
    return out


def start_and_wait(model: Path, out: Path, batches: int, *extra: str) -> subprocess.Popen:
    """A run in the background, once ``batches`` batches are on disk."""
    proc = subprocess.Popen([*ADVLAB, *flags(model, out), *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    results, deadline = out / "results.jsonl", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_bytes().splitlines()) >= 1 + batches:
            return proc
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run ended (or stalled) before {batches} batches: make it longer")


def batch_ids(out: Path) -> list[int]:
    return [json.loads(line)["batch"] for line in (out / "results.jsonl").read_text()
            .splitlines()[1:]]


def test_item10_sigkill_at_a_random_batch_then_resume_is_byte_identical(model, full,
                                                                         tmp_path) -> None:
    k = random.SystemRandom().randint(1, BATCHES - 3)
    cut = tmp_path / "cut"
    proc = start_and_wait(model, cut, k)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists()
    resumed = run(*flags(model, cut, "--resume"))
    assert resumed.returncode == 0, (k, resumed.stderr)
    assert (cut / "summary.json").read_bytes() == (full / "summary.json").read_bytes(), k
    assert sorted(batch_ids(cut)) == list(range(BATCHES)), k  # none lost, none twice
    timing = json.loads((cut / "timing.json").read_text())["timing"]
    assert timing["seconds"] >= timing["attack_seconds"] > 0, timing  # all sessions counted


def test_item8_rerun_into_a_finished_run_is_refused(model, full, capsys) -> None:
    before = snapshot(full)
    code, out, err = call(capsys, *flags(model, full))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"advlab: error: {full} already holds a finished run (summary.json); use --resume to "
        "continue it, --overwrite to replace it, or another --out"]
    assert snapshot(full) == before


def test_item8_resume_of_a_missing_folder_says_it_starts(model, full, tmp_path,
                                                        capsys) -> None:
    out = tmp_path / "never-ran"
    code, _, err = call(capsys, *flags(model, out, "--resume"))
    assert code == 0, err
    assert f"advlab: nothing to resume in {out} (no results file), starting" in err.splitlines()
    assert (out / "summary.json").read_bytes() == (full / "summary.json").read_bytes()


def test_overwrite_replaces_and_excludes_resume(model, full, tmp_path, capsys) -> None:
    out = tmp_path / "again"
    shutil.copytree(full, out)
    (out / "results.jsonl").write_text("not the run's results\n")
    code, _, err = call(capsys, *flags(model, out, "--resume", "--overwrite"))
    assert code == 2 and err.strip().splitlines() == [
        "advlab: error: --resume and --overwrite exclude each other: continue the run in --out, "
        "or replace it"]
    assert (out / "results.jsonl").read_text() == "not the run's results\n"
    code, _, err = call(capsys, *flags(model, out, "--overwrite"))
    assert code == 0, err
    assert (out / "summary.json").read_bytes() == (full / "summary.json").read_bytes()


def test_item3_non_utf8_and_corrupt_lines_are_named_and_recomputed(model, full, tmp_path,
                                                                    capsys) -> None:
    out = tmp_path / "damaged"
    out.mkdir()
    lines = (full / "results.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3][:31] + b"\xff" + lines[3][32:]      # batch 2: not UTF-8
    lines[6] = lines[6].replace(b'"valid":[true', b'"valid":[1', 1)  # batch 5: JSON, not a record
    (out / "results.jsonl").write_bytes(b"".join(lines))
    code, _, err = call(capsys, *flags(model, out, "--resume"))
    assert code == 0, err
    path = out / "results.jsonl"
    said = [line for line in err.splitlines() if line.startswith(f"advlab: {path}:")]
    assert said == [
        f"advlab: {path}:4: corrupt record (not UTF-8: byte 0xff at column 32); dropping it: "
        "its batch will be recomputed",
        f"advlab: {path}:7: corrupt record (batch 5, fgsm at eps 0.05: valid must be a list of "
        "10 booleans); dropping it: its batch will be recomputed"]
    assert (out / "summary.json").read_bytes() == (full / "summary.json").read_bytes()
    assert sorted(batch_ids(out)) == list(range(BATCHES))


def test_item3_a_results_file_that_is_not_one_is_an_error_and_left_alone(model, tmp_path,
                                                                         capsys) -> None:
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "results.jsonl").write_bytes(b'{"name": "not advlab\xff"}\n{"x": 1}\n')
    before = snapshot(out)
    code, stdout, err = call(capsys, *flags(model, out, "--resume"))
    assert code == 2 and stdout == ""
    assert err.strip().splitlines() == [
        f"advlab: error: {out / 'results.jsonl'}:1: not an advlab results file (no header "
        "line); remove it or use another --out"]
    assert snapshot(out) == before


def test_item9_a_second_writer_is_refused_and_a_killed_ones_lock_is_stale(model, full,
                                                                          tmp_path,
                                                                          capsys) -> None:
    out = tmp_path / "shared"
    first = start_and_wait(model, out, 0, "--attack", "pgd:steps=2000")  # locked, running long
    try:
        code, stdout, err = call(capsys, *flags(model, out, "--resume"))
        assert code == 2 and stdout == ""
        assert err.strip().splitlines() == [
            f"advlab: error: {out}: in use by another advlab process (pid {first.pid} on "
            f"{socket.gethostname()}) writing .advlab.lock; wait for it to finish or use another "
            "--out"]
        assert first.poll() is None  # the first run goes on, undisturbed
        lines = (out / "results.jsonl").read_text().splitlines()
        assert sum('"type":"header"' in line for line in lines) == 1
        assert not (out / "summary.json").exists()
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    code, _, err = call(capsys, *flags(model, out, "--overwrite"))  # the dead run's lock is stale
    assert code == 0, err
    assert (out / "summary.json").read_bytes() == (full / "summary.json").read_bytes()

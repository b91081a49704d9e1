"""Scale-out on torch.distributed (issue 16), with 2 gloo processes on the CPU launched by
torchrun (``--workers 2``): a sharded evaluation's summary is byte-identical to one process's,
a rank killed with SIGKILL loses nothing and has nothing recomputed after ``--resume``, and
data-parallel training makes the updates of one process.

The default suite keeps the two acceptance tests (byte identity on the digits, SIGKILL of a
rank then ``--resume``), each on the fewest samples that still exercise what it claims; the
others are ``slow`` (``make test-all``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from advlab.cli import main
from cli_runs import ADVLAB, ENV, run, train_digits_mlp


def batches(out: Path) -> list[bytes]:
    """Every batch line of every results file of a run folder."""
    return [line for path in sorted(out.glob("results*.jsonl"))
            for line in path.read_bytes().splitlines(keepends=True)[1:]]


def batch_ids(out: Path) -> list[int]:
    return sorted(json.loads(line)["batch"] for line in batches(out))


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> Path:
    return train_digits_mlp(tmp_path_factory.mktemp("model"))


# 3 batches (10, 10 and a ragged 5): rank 0 runs batches 0 and 2, rank 1 batch 1, so the merge
# interleaves the two files and one rank appends more than one batch.
DIGITS = ["--attack", "fgsm", "--attack", "pgd:steps=10", "--attack", "deepfool",
          "--eps", "linf=0.05,0.1", "--eps", "l2=1", "--n", "25", "--batch-size", "10",
          "--seed", "3", "--quiet"]
DIGITS_BATCHES = 3


def test_workers_2_on_digits_is_byte_identical_to_1(digits_model, tmp_path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["evaluate", "--model", str(digits_model), *DIGITS, "--out", str(one)]) == 0
    done = run("evaluate", "--model", str(digits_model), *DIGITS, "--out", str(two),
               "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert (two / "summary.json").read_bytes() == (one / "summary.json").read_bytes()
    assert sorted(p.name for p in two.glob("results*")) == ["results.rank0.jsonl",
                                                            "results.rank1.jsonl"]
    assert batch_ids(two) == list(range(DIGITS_BATCHES)) == batch_ids(one)
    assert [len((two / f"results.rank{r}.jsonl").read_bytes().splitlines()) - 1
            for r in (0, 1)] == [2, 1]  # a header and the rank's batches
    line = json.loads(done.stdout.strip().splitlines()[-1])  # one JSON line, from rank 0
    assert line["command"] == "evaluate" and len(done.stdout.strip().splitlines()) == 1
    assert json.loads((two / "timing.json").read_text())["timing"]["workers"] == 2
    assert (two / "report.html").read_text() != ""


@pytest.mark.slow
@pytest.mark.data
def test_workers_2_on_nsl_kdd_is_byte_identical_to_1(tmp_path, data_root) -> None:
    path = data_root / "nsl-kdd"
    model = tmp_path / "model"
    assert main(["train", "--dataset", "nsl-kdd", "--data-path", str(path), "--model", "mlp",
                 "--epochs", "2", "--val-fraction", "0", "--quiet", "--out", str(model)]) == 0
    flags = ["--model", str(model), "--attack", "pgd:steps=20", "--attack",
             "pgd:constraints=box,steps=10", "--eps", "linf=0.05,0.1", "--n", "300",
             "--batch-size", "50", "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["evaluate", *flags, "--out", str(one)]) == 0
    done = run("evaluate", *flags, "--out", str(two), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert (two / "summary.json").read_bytes() == (one / "summary.json").read_bytes()
    assert json.loads((one / "summary.json").read_text())["tabular"]  # the features moved


@pytest.mark.parametrize("victim", [1, pytest.param(0, marks=pytest.mark.slow)])
def test_sigkill_of_one_rank_then_resume_loses_and_recomputes_nothing(digits_model, tmp_path,
                                                                      victim) -> None:
    flags = ["evaluate", "--model", str(digits_model), "--attack", "fgsm", "--attack",
             "pgd:steps=60,early_stop=false", "--eps", "linf=0.05,0.1", "--n", "240",
             "--batch-size", "10", "--seed", "1", "--quiet"]
    reference, cut = tmp_path / "reference", tmp_path / "cut"
    assert main([*flags, "--out", str(reference)]) == 0
    proc = subprocess.Popen([*ADVLAB, *flags, "--out", str(cut), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    target, deadline = cut / f"results.rank{victim}.jsonl", time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if target.exists() and len(target.read_bytes().splitlines()) >= 3:  # 2 batches done
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before a rank could be killed: make it longer"
    os.kill(json.loads(target.read_bytes().splitlines()[0])["pid"], signal.SIGKILL)
    assert proc.wait(timeout=300) != 0  # torchrun stops the other rank and fails
    before = [line for line in batches(cut) if line.endswith(b"\n")]
    assert 2 <= len(before) < 24 and not (cut / "summary.json").exists()

    resumed = run(*flags, "--out", str(cut), "--workers", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (cut / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()
    assert batch_ids(cut) == list(range(24))  # nothing lost, nothing twice
    after = batches(cut)
    assert all(line in after for line in before)  # what was written was not recomputed


@pytest.mark.slow
def test_data_parallel_training_makes_the_updates_of_one_process(tmp_path) -> None:
    """Standard training has no random starts: with the global batch split over 2 ranks and
    the gradients averaged by DDP, the weights are one process's up to float summation."""
    common = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "3", "--lr", "3e-3",
              "--batch-size", "64", "--val-fraction", "0", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    done = run(*common, "--out", str(tmp_path / "two"), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["workers"] == 2
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=2e-4, rtol=1e-3)
    assert not (tmp_path / "two" / "checkpoint").exists()  # removed once the model is saved


@pytest.mark.slow
def test_data_parallel_pgd_at_runs_and_checkpoints(tmp_path) -> None:
    out = tmp_path / "robust"
    done = run("train", "--dataset", "digits", "--model", "mlp", "--defense", "pgd-at", "--eps",
               "0.1", "--epochs", "2", "--batch-size", "64", "--quiet", "--out", str(out),
               "--workers", "2")
    assert done.returncode == 0, done.stderr
    sidecar = json.loads((out / "advlab.json").read_text())
    assert sidecar["defense"]["method"] == "pgd-at" and len(sidecar["history"]["eps"]) == 2
    assert 0.5 < sidecar["metrics"]["test_accuracy"] <= 1


@pytest.mark.slow
def test_train_sigkill_then_resume_continues_from_the_checkpoint(tmp_path) -> None:
    common = ["train", "--dataset", "digits", "--model", "mlp", "--defense", "pgd-at", "--eps",
              "0.1", "--epochs", "6", "--batch-size", "64", "--val-fraction", "0", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "full")]) == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen([*ADVLAB, *common, "--out", str(cut)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if list((cut / "checkpoint").glob("epoch-0002/state.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = run(*common, "--out", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in resumed.stderr
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    again = load_file(str(cut / "model.safetensors"))
    assert all(torch.equal(full[k], again[k]) for k in full)  # exactly the uninterrupted run


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason=f"needs 2 CUDA devices (NCCL), found {torch.cuda.device_count()}")
def test_workers_2_on_two_gpus_with_nccl(digits_model, tmp_path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["evaluate", "--model", str(digits_model), *DIGITS, "--device", "cuda",
                 "--out", str(one)]) == 0
    done = run("evaluate", "--model", str(digits_model), *DIGITS, "--device", "cuda",
               "--out", str(two), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads((two / "summary.json").read_text())["config"]["device"] == "cuda"
    assert batch_ids(two) == list(range(DIGITS_BATCHES))

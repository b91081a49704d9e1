"""`advlab poison`: the poisoned data file with its indices, the summary and the report."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from advlab.cli import main
from advlab.data import load


def _run(tmp_path, capsys, *args: str) -> dict:
    out = tmp_path / "poison"
    assert main(["poison", "--dataset", "digits", "--out", str(out), "--quiet", *args]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "advlab.poisoning/1" and line["command"] == "poison"
    html = (out / "report.html").read_text()
    assert "Poisoning report" in html and "<svg" in html
    summary["tensors"] = load_file(str(out / "poisoned.safetensors"))
    return summary


def test_svm_injection_writes_the_injected_rows_and_the_error_curve(tmp_path, capsys) -> None:
    s = _run(tmp_path, capsys, "--attack", "svm-injection", "--classes", "1,7", "--n-train",
             "60", "--n-val", "100", "--points", "2")
    t = s["tensors"]
    assert torch.equal(t["indices"], torch.tensor([60, 61]))
    assert t["x"].shape == (62, 64) and set(t["y"].tolist()) <= {1, 7}
    assert ((t["x"] >= 0) & (t["x"] <= 1)).all()
    assert [r["level"] for r in s["curve"]["rows"]] == [0.0, 1.0, 2.0]
    assert s["metrics"]["n_poisoned"] == 2 and s["learner"] == "SVC (linear)"


def test_label_flip_writes_exactly_the_flipped_rows(tmp_path, capsys) -> None:
    s = _run(tmp_path, capsys, "--attack", "label-flip", "--mode", "random", "--classes",
             "3,8", "--n-train", "80", "--n-val", "50", "--rate", "0.25")
    t = s["tensors"]
    assert t["indices"].numel() == 20 and s["metrics"]["n_poisoned"] == 20
    assert sorted({r["level"] for r in s["curve"]["rows"]}) == [0.0, 0.0625, 0.125, 0.25]


def test_backdoor_on_digits_with_the_filter(tmp_path, capsys) -> None:
    s = _run(tmp_path, capsys, "--attack", "backdoor", "--rate", "0.05", "--target", "2",
             "--patch-size", "2", "--epochs", "2", "--defense", "activation-clustering")
    t, ds = s["tensors"], load("digits")
    idx = t["indices"]
    assert idx.numel() == round(0.05 * ds.x_train.shape[0])
    assert (t["y"][idx] == 2).all() and (ds.y_train[idx] != 2).all()
    keep = torch.ones(ds.x_train.shape[0], dtype=torch.bool)
    keep[idx] = False
    assert torch.equal(t["x"][keep], ds.x_train[keep])
    assert (t["x"][idx][:, 0, 5:7, 5:7] != ds.x_train[idx][:, 0, 5:7, 5:7]).any()
    for key in ("clean_accuracy", "poisoned_accuracy", "backdoor_success",
                "defended_backdoor_success"):
        assert 0.0 <= s["metrics"][key] <= 1.0
    assert {"precision", "recall"} <= set(s["defense"]) and len(s["examples"]["clean"]) == 8


@pytest.mark.parametrize(("args", "message"), [
    (["--attack", "backdoor", "--rate", "1.5"], "--rate must lie in [0, 1]"),
    (["--attack", "backdoor", "--target", "10"], "--target must be a class in [0, 10)"),
    (["--attack", "svm-injection"], "choose two with --classes"),
    (["--attack", "svm-injection", "--classes", "1,1"], "two different classes"),
    (["--attack", "backdoor", "--trigger-features", "nope=1"], "has no feature_names"),
    (["--attack", "backdoor", "--trigger-features", "nope"], "expected NAME=VALUE"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, args, message) -> None:
    code = main(["poison", "--dataset", "digits", "--out", str(tmp_path / "p"), "--quiet",
                 *args])
    assert code == 2
    assert message in capsys.readouterr().err

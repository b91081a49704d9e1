"""`advlab train --defense ...` and `advlab detect`: sidecars record the defense, and
`advlab evaluate` reports it."""

from __future__ import annotations

import json

import pytest

from advlab.cli import main


def _train(tmp_path, *extra: str) -> dict:
    out = tmp_path / "model"
    code = main(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--quiet",
                 "--out", str(out), *extra])
    assert code == 0
    return json.loads((out / "advlab.json").read_text())


@pytest.mark.parametrize("defense, extra, key, value", [
    ("pgd-at", ["--eps", "0.1"], "eps", 0.1),
    ("fgsm-at", ["--eps", "0.1", "--mix", "0.5"], "mix", 0.5),
    ("trades", ["--eps", "0.1", "--beta", "3"], "beta", 3.0),
    ("distillation", ["--temperature", "20", "--epochs", "8", "--lr", "3e-3"], "temperature",
     20.0),
])
def test_train_defense_records_it_in_the_sidecar(tmp_path, capsys, defense, extra, key,
                                                 value) -> None:
    sidecar = _train(tmp_path, "--defense", defense, *extra)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["defense"] == defense and summary["test_accuracy"] > 0.5
    record = sidecar["defense"]
    assert record["method"] == defense and record[key] == value
    assert sidecar["seed"] == 0 and sidecar["dataset"]["name"] == "digits"
    # advlab evaluate reports the defense in the model card
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--attack", "fgsm",
                 "--eps", "linf=0.1", "--n", "20", "--quiet",
                 "--out", str(tmp_path / "eval")]) == 0
    card = json.loads((tmp_path / "eval" / "summary.json").read_text())["model_card"]
    assert card["defense"]["method"] == defense


@pytest.mark.parametrize("args, message", [
    (["--defense", "pgd-at"], "needs --eps"),
    (["--defense", "distillation", "--eps", "0.1"], "--eps: not an option of --defense "
                                                    "distillation"),
    (["--beta", "2"], "--beta: not an option of --defense none"),
])
def test_train_defense_options_are_checked(tmp_path, capsys, args, message) -> None:
    code = main(["train", "--dataset", "digits", "--out", str(tmp_path / "m"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_detect_reports_and_retrains(tmp_path, capsys) -> None:
    _train(tmp_path)
    capsys.readouterr()
    code = main(["detect", "--model", str(tmp_path / "model"), "--attack", "pgd:steps=5",
                 "--unseen-attack", "fgsm", "--eps", "0.2", "--n", "80", "--rounds", "1",
                 "--fine-tune-epochs", "1", "--quiet", "--out", str(tmp_path / "det")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.5 < summary["seen_roc_auc"] <= 1 and 0 <= summary["false_positive_rate"] <= 1
    report = json.loads((tmp_path / "det" / "detection.json").read_text())
    assert set(report["detector"]) == {"seen", "unseen"} and len(report["rounds"]) == 1
    sidecar = json.loads((tmp_path / "det" / "model" / "advlab.json").read_text())
    assert sidecar["defense"]["defense"] == "detect-and-retrain"
    assert sidecar["defense"]["attack"]["name"] == "pgd"


def test_detect_bad_fpr_is_a_usage_error(tmp_path, capsys) -> None:
    _train(tmp_path)
    code = main(["detect", "--model", str(tmp_path / "model"), "--eps", "0.1", "--fpr", "1.5",
                 "--out", str(tmp_path / "det")])
    assert code == 2 and "--fpr" in capsys.readouterr().err

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from advlab.cli import main


def test_help_lists_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "datasets" in out and "train" in out and "demo" in out


def test_no_command_is_a_usage_error(capsys) -> None:
    assert main([]) == 2


def test_datasets_lists_every_dataset(capsys) -> None:
    assert main(["datasets"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    names = [row["name"] for row in summary["datasets"]]
    assert names == ["digits", "mnist", "nsl-kdd", "kddcup99", "tuandromd"]
    assert "embedded" in captured.err and "--data-path" in captured.err


def test_user_error_is_one_line_exit_2(capsys, tmp_path) -> None:
    code = main(["train", "--dataset", "nsl-kdd", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("advlab: error:") and "--data-path" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_missing_data_folder_is_a_usage_error(capsys, tmp_path) -> None:
    code = main(["train", "--dataset", "tuandromd", "--data-path", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "m")])
    assert code == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_unknown_dataset_names_known_ones(capsys, tmp_path) -> None:
    assert main(["train", "--dataset", "cifar", "--out", str(tmp_path)]) == 2
    assert "known: digits" in capsys.readouterr().err


def test_small_cnn_on_tabular_is_explained(capsys, tmp_path, data_root) -> None:
    code = main(["train", "--dataset", "tuandromd", "--data-path", str(data_root / "tuandromd"),
                 "--model", "small_cnn", "--out", str(tmp_path / "m"), "--quiet"])
    assert code == 2
    assert "small_cnn needs image inputs" in capsys.readouterr().err


def test_debug_shows_traceback(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "advlab", "--debug", "train", "--dataset",
                           "nsl-kdd", "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_train_digits_writes_model_and_sidecar(capsys, tmp_path) -> None:
    out = tmp_path / "digits-cnn"
    code = main(["train", "--dataset", "digits", "--model", "small_cnn", "--epochs", "3",
                 "--out", str(out), "--quiet", "--seed", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    sidecar = json.loads((out / "advlab.json").read_text())
    assert (out / "model.safetensors").is_file()
    assert sidecar["architecture"] == "small_cnn" and sidecar["seed"] == 1
    assert sidecar["dataset"]["name"] == "digits"
    assert sidecar["metrics"]["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    assert summary["test_accuracy"] > 0.5  # 3 epochs are far better than chance (0.1)

"""Every bad input is a one-line error before any work (issue 19): exit code 2, one line on
stderr naming the flag, file or shape, and nothing written where nothing should be.

Parse-time errors run `advlab` in a subprocess (it starts without torch, so this is cheap);
errors found once the model and data are loaded run ``main`` in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from advlab.cli import main
from advlab.models import mlp, save

ADVLAB = [sys.executable, "-m", "advlab"]


def advlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ADVLAB, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def one_error_line(stderr: str) -> str:
    """The error line; every other stderr line must be progress (`loading ...`)."""
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("advlab: error:"), stderr
    assert all(line.startswith("loading ") for line in lines[:-1]), stderr
    assert "Traceback" not in stderr
    return lines[-1]


@pytest.fixture(scope="module")
def android_model(tmp_path_factory) -> Path:
    """An (untrained) MLP whose sidecar says: trained on tuandromd, inputs (241,)."""
    folder = tmp_path_factory.mktemp("models") / "android"
    save(mlp(241, 2, hidden=(8,)), folder, architecture="mlp",
         arguments={"in_features": 241, "classes": 2, "hidden": [8]},
         dataset={"name": "tuandromd", "input_shape": [241]},
         class_names=["goodware", "malware"])
    return folder


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> Path:
    """An (untrained) MLP for the 8x8 digits, with the sidecar `advlab train` writes."""
    folder = tmp_path_factory.mktemp("models") / "digits"
    save(mlp(64, 10, hidden=(16,)), folder, architecture="mlp",
         arguments={"in_features": 64, "classes": 10, "hidden": [16]},
         dataset={"name": "digits", "input_shape": [1, 8, 8], "options": {}},
         class_names=[str(i) for i in range(10)])
    return folder


# item 1: a model fed data with the wrong number of features

@pytest.mark.parametrize("command", ["evaluate", "explain", "detect", "substitute", "transfer"])
def test_model_and_data_shapes_are_checked_before_any_work(capsys, tmp_path, android_model,
                                                           command) -> None:
    out = tmp_path / "out"
    args = {
        "evaluate": ["evaluate", "--model", str(android_model), "--attack", "fgsm",
                     "--eps", "linf=0.1"],
        "explain": ["explain", "--method", "saliency", "--model", str(android_model)],
        "detect": ["detect", "--model", str(android_model), "--eps", "0.1", "--n", "10"],
        "substitute": ["substitute", "--model", str(android_model)],
        "transfer": ["transfer", "--source", str(android_model), "--target",
                     str(android_model), "--eps", "0.1"],
    }[command]
    code = main([*args, "--dataset", "digits", "--out", str(out)])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"model {android_model}" in line and "(241,)" in line and "tuandromd" in line
    assert "digits has inputs of shape (1, 8, 8)" in line
    assert not out.exists()


def test_class_count_is_checked(capsys, tmp_path, digits_model) -> None:
    """Same shapes, other labels: a two-class model on ten-class data."""
    folder = tmp_path / "binary"
    save(mlp(64, 2, hidden=(4,)), folder, architecture="mlp",
         arguments={"in_features": 64, "classes": 2, "hidden": [4]},
         dataset={"name": "digits", "input_shape": [1, 8, 8]})
    code = main(["evaluate", "--model", str(folder), "--attack", "fgsm", "--eps", "linf=0.1",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "returns 2 logits, but digits has 10 classes" in one_error_line(
        capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


# item 2: the whole configuration is checked before the data is loaded

@pytest.mark.parametrize(("flags", "message"), [
    (["--n", "-5"], "--n must be >= 1, got -5"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--attack", "pgd:steps=-3"], "--attack 'pgd:steps=-3': attack 'pgd': steps must be >= 1"),
    (["--attack", "pgd:step_size=0"], "step_size must be > 0, got 0"),
    (["--attack", "deepfool:candidates=1"], "candidates must be >= 2, got 1"),
    (["--attack", "jsma:gamma=2"], "gamma must lie in (0, 1], got 2.0"),
    (["--attack", "pgd:loss=xe"], "loss must be one of"),
    (["--eps", "linf=-0.1"], "--eps 'linf=-0.1': eps must be positive"),
])
def test_evaluate_settings_fail_before_loading(tmp_path, digits_model, flags, message) -> None:
    out = tmp_path / "out"
    base = {"--attack": "fgsm", "--eps": "linf=0.1"}
    for flag in ("--attack", "--eps"):
        if flag not in flags:
            flags = [*flags, flag, base[flag]]
    done = advlab("evaluate", "--model", str(digits_model), "--out", str(out), *flags)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr  # no "loading", no "evaluating"
    assert done.stdout == "" and not out.exists()


def test_config_file_errors_name_the_file_and_line(tmp_path, digits_model) -> None:
    out = tmp_path / "out"
    config = tmp_path / "eval.toml"
    config.write_text("\n".join([f'model = "{digits_model}"', f'out = "{out}"', "n = 20", "",
                                 "[eps]", "linf = [0.1]", "", "[[attack]]", 'name = "fgsm"', "",
                                 "[[attack]]", 'name = "pgd"', "steps = -3", ""]))
    done = advlab("evaluate", "--config", str(config))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [f"advlab: error: {config}:11: attack #2: attack 'pgd': steps must be >= 1, "
                     "got -3"]
    config.write_text(config.read_text().replace("steps = -3", "steps = 5").replace(
        "n = 20", "n = 0"))
    done = advlab("evaluate", "--config", str(config))
    assert done.returncode == 2 and f"{config}:3: n must be >= 1, got 0" in done.stderr
    assert not out.exists()


def test_n_larger_than_the_split_fails_before_the_plan_is_printed(capsys, tmp_path,
                                                                  digits_model) -> None:
    out = tmp_path / "out"
    code = main(["evaluate", "--model", str(digits_model), "--attack", "fgsm", "--eps",
                 "linf=0.1", "--n", "100000", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "n = 100000" in one_error_line(err) and "test split of digits" in err
    assert "evaluating" not in err and not out.exists()


# item 6: every numeric flag is checked when the command line is parsed, and named

@pytest.mark.parametrize(("args", "message"), [
    (["train", "--dataset", "digits", "--defense", "pgd-at", "--eps", "-0.1"],
     "--eps must be > 0, got -0.1"),
    (["train", "--dataset", "digits", "--val-fraction", "1"],
     "--val-fraction must lie in [0, 1), got 1"),
    (["train", "--dataset", "digits", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--dataset", "digits", "--lr", "nan"], "--lr must be > 0, got nan"),
    (["detect", "--model", "m", "--eps", "0.1", "--fpr", "2"],
     "--fpr must lie in (0, 1), got 2"),
    (["detect", "--model", "m", "--eps", "0.1", "--rounds", "-1"], "--rounds must be >= 0"),
    (["explain", "--method", "saliency", "--model", "m", "--n", "1"], "--n must be >= 2"),
    (["substitute", "--model", "m", "--eps", "0.1,-2"],
     "--eps must be > 0, got -2 (in '0.1,-2')"),
    (["transfer", "--source", "m", "--target", "m", "--eps", "0.1", "--n", "0"],
     "--n must be >= 1"),
    (["poison", "--attack", "backdoor", "--dataset", "digits", "--rate", "2"],
     "--rate must lie in [0, 1], got 2"),
    (["robust-features", "--dataset", "digits", "--eps", "0"], "--eps must be > 0, got 0"),
    (["evaluate", "--n", "many"], "--n must be an integer, got 'many'"),
])
def test_numeric_flags_are_named(tmp_path, args, message) -> None:
    out = tmp_path / "out"
    done = advlab(*args, "--out", str(out))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advlab: error: "), done.stderr
    assert message in lines[0]
    assert not out.exists()


# item 7: which attack runs at which norm is decided, and said, before any work

def test_an_attack_with_no_norm_in_the_grid_is_an_error(tmp_path, digits_model) -> None:
    out = tmp_path / "out"
    done = advlab("evaluate", "--model", str(digits_model), "--attack", "jsma", "--eps",
                  "linf=0.1", "--out", str(out))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["advlab: error: --eps: attack 'jsma' supports the norms l0; the eps grid "
                     "has linf: add a grid for one of its norms"]
    assert not out.exists()


def test_every_supported_norm_runs_and_the_skipped_pairs_are_reported(capsys, tmp_path,
                                                                      digits_model) -> None:
    out = tmp_path / "out"
    code = main(["evaluate", "--model", str(digits_model), "--n", "6", "--batch-size", "6",
                 "--attack", "fgsm", "--attack", "carlini_wagner_l2:steps=2,binary_search_steps=1",
                 "--eps", "linf=0.1", "--eps", "l2=1", "--out", str(out), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert ("attack × norm: fgsm linf, l2; carlini_wagner_l2 l2 · skipped: carlini_wagner_l2 × "
            "linf (not supported: carlini_wagner_l2 supports l2)") in err
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["attack"], r["norm"]) for r in summary["results"]} >= {
        ("fgsm-linf", "linf"), ("fgsm-l2", "l2"), ("carlini_wagner_l2", "l2")}
    coverage = {(c["attack"], c["norm"]): c for c in summary["config"]["coverage"]}
    assert coverage["fgsm", "l2"]["runs"] == ["fgsm-l2"]
    assert coverage["carlini_wagner_l2", "linf"]["runs"] == []
    assert "not supported" in coverage["carlini_wagner_l2", "linf"]["reason"]
    page = (out / "report.html").read_text()
    assert 'id="coverage-table"' in page and "skipped: carlini_wagner_l2 × L∞" in page


# item 11: detect-and-retrain keeps the most robust round unless --keep-last

def test_keep_last_without_rounds_is_an_error(tmp_path, digits_model) -> None:
    out = tmp_path / "out"
    done = advlab("detect", "--model", str(digits_model), "--eps", "0.1", "--keep-last",
                  "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "advlab: error: --keep-last needs --rounds >= 1 (it chooses among retrained rounds)"]
    assert not out.exists()


def test_detect_logs_the_kept_round(capsys, tmp_path, digits_model) -> None:
    out = tmp_path / "out"
    code = main(["detect", "--model", str(digits_model), "--attack", "pgd:steps=3", "--eps",
                 "0.2", "--n", "20", "--rounds", "1", "--fine-tune-epochs", "1", "--out",
                 str(out), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    kept = json.loads((out / "detection.json").read_text())["kept"]
    which = "the original weights" if kept["round"] is None else f"round {kept['round']}"
    assert f"kept {which} (the most robust on the held-out set" in err
    sidecar = json.loads((out / "model" / "advlab.json").read_text())
    assert sidecar["metrics"]["kept_round"] == kept["round"]
    first = json.loads((out / "detection.json").read_text())["rounds"][0]
    before, after = first["robust_accuracy_before"]["seen"], first["robust_accuracy_after"]["seen"]
    assert ("warning: round 0 lowered robust accuracy" in err) == (after < before)
    assert kept["round"] == (0 if after > before else None)  # the round only if it was better

"""`advlab evaluate` end to end, in subprocesses: SIGKILL and resume, bad input, masked models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ADVLAB = [sys.executable, "-m", "advlab"]
VOLATILE = ("created", "timing")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*ADVLAB, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=ENV)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "mlp"
    done = run("train", "--dataset", "digits", "--model", "mlp", "--epochs", "8", "--lr", "3e-3",
               "--val-fraction", "0", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def _stable(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in VOLATILE}
    out["results"] = [{k: v for k, v in r.items() if k != "seconds"} for r in summary["results"]]
    out["config"] = {k: v for k, v in summary["config"].items() if k != "out"}
    return out


def _config(tmp_path: Path, model: Path, out: Path, **extra: str) -> Path:
    lines = [f'model = "{model}"', f'out = "{out}"', "n = 240", "batch_size = 10", "seed = 1",
             "[eps]", "linf = [0.05, 0.1, 0.3]", "l2 = [1.0, 2.0]",
             "[[attack]]", 'name = "fgsm"',
             "[[attack]]", 'name = "pgd"', "steps = 50", "early_stop = false",
             "[[attack]]", 'name = "deepfool"']
    lines[4:4] = [f"{k} = {v}" for k, v in extra.items()]
    path = tmp_path / f"{out.name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow  # the default suite's SIGKILL tests: test_run_store_cli.py, test_distributed.py
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, digits_model) -> None:
    full = run("evaluate", "--config", str(_config(tmp_path, digits_model, tmp_path / "full")),
               "--quiet")
    assert full.returncode == 0, full.stderr
    line = json.loads(full.stdout.strip().splitlines()[-1])
    assert line["command"] == "evaluate" and Path(line["report"]).is_file()

    cut = tmp_path / "cut"
    config = _config(tmp_path, digits_model, cut)
    proc = subprocess.Popen([*ADVLAB, "evaluate", "--config", str(config), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    results = cut / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_bytes().splitlines()) >= 3:  # header + 2 batches
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    batches_before = len(results.read_bytes().splitlines()) - 1
    assert 2 <= batches_before < 24 and not (cut / "summary.json").exists()

    resumed = run("evaluate", "--config", str(config), "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "full" / "summary.json").read_text())
    b = json.loads((cut / "summary.json").read_text())
    assert _stable(a) == _stable(b)
    assert len(results.read_text().splitlines()) == 1 + 24


def _masked_factory(tmp_path: Path, model: Path) -> str:
    (tmp_path / "masked_models.py").write_text(
        "import torch\n"
        "from advlab.models import load\n\n"
        "class Saturated(torch.nn.Module):\n"
        "    '''Logits x 1e4, clamped: the gradient is zero almost everywhere.'''\n"
        "    def __init__(self, inner):\n"
        "        super().__init__()\n"
        "        self.inner = inner\n"
        "    def forward(self, x):\n"
        "        return (self.inner(x) * 1e4).clamp(-10, 10)\n\n"
        "def build():\n"
        f"    return Saturated(load({str(model)!r})[0])\n")
    return "masked_models:build"


def test_masked_model_fails_the_gradient_check(tmp_path, digits_model) -> None:
    factory = _masked_factory(tmp_path, digits_model)
    done = run("evaluate", "--model-factory", factory, "--dataset", "digits", "--n", "60",
               "--attack", "pgd:steps=10", "--eps", "linf=0.1,0.3", "--out", str(tmp_path / "o"),
               "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    checks = {c["name"]: c for c in summary["checks"]}
    assert not checks["gradients_nonzero"]["passed"]
    assert "gradient masking" in checks["gradients_nonzero"]["meaning"]
    assert "gradients_nonzero" in json.loads(done.stdout)["checks_failed"]
    assert "gradients_nonzero" in (tmp_path / "o" / "report.html").read_text()


def test_report_rerenders_from_json(tmp_path, digits_model) -> None:
    out = tmp_path / "o"
    done = run("evaluate", "--model", str(digits_model), "--n", "40", "--attack", "fgsm",
               "--eps", "linf=0.1", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    first = (out / "report.html").read_text()
    (out / "report.html").unlink()
    again = run("report", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / "report.html").read_text() == first


@pytest.mark.parametrize("case", ["missing_key", "unknown_attack", "negative_eps",
                                  "not_weights", "missing_data"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, digits_model, case) -> None:
    model = digits_model
    base = [f'model = "{model}"', f'out = "{tmp_path / "o"}"', "n = 20",
            "[eps]", "linf = [0.1]", "[[attack]]", 'name = "fgsm"']
    expected = {"missing_key": "missing key 'eps'", "unknown_attack": "unknown attack 'fgsn'",
                "negative_eps": "eps must be positive", "not_weights": "not a safetensors",
                "missing_data": "does not exist"}[case]
    if case == "missing_key":
        base = base[:3] + base[5:]
    elif case == "unknown_attack":
        base[-1] = 'name = "fgsn"'
    elif case == "negative_eps":
        base[4] = "linf = [-0.1]"
    elif case == "not_weights":
        fake = tmp_path / "fake"
        fake.mkdir()
        (fake / "advlab.json").write_text((model / "advlab.json").read_text())
        (fake / "model.safetensors").write_text("this is not a weights file\n")
        base[0] = f'model = "{fake}"'
    elif case == "missing_data":
        base.insert(1, 'dataset = "nsl-kdd"')
        base.insert(2, f'data_path = "{tmp_path / "no-such-folder"}"')
    config = tmp_path / "eval.toml"
    config.write_text("\n".join(base) + "\n")
    done = run("evaluate", "--config", str(config), "--quiet")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advlab: error:"), done.stderr
    assert expected in lines[0]
    assert done.stdout == ""


def test_undefended_digits_cnn_passes_every_sanity_check(tmp_path) -> None:
    """The demo's model (small CNN on 28x28 digits, 15 epochs) and a standard evaluation: every
    check passes, including the inconclusive-but-passed ones."""
    import torch

    from advlab.data import load
    from advlab.evaluation import evaluate
    from advlab.models import train_classifier

    data = load("digits", upsample=True, test_size=0.3)
    model = train_classifier(data, "small_cnn", epochs=15, lr=2e-3, batch_size=64,
                             val_fraction=0, progress=False).model
    torch.manual_seed(0)
    ev = evaluate(model, data, ["fgsm", {"name": "pgd", "steps": 20}, "deepfool"],
                  {"linf": [0.05, 0.1, 0.2, 0.3], "l2": [1.0, 2.0]}, n=120, batch_size=60,
                  progress=False)
    failed = [(c["name"], c["evidence"]) for c in ev.summary["checks"] if not c["passed"]]
    assert failed == []
    assert len(ev.summary["checks"]) == 11  # 5 model, 4 result and 2 advice checks

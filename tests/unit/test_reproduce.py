"""advlab reproduce: the registry, the runner's cache and resume, the CLI and the page (with a
toy experiment, tests/reproduce_toy.py), and one real experiment at its smallest."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import reproduce_toy
from advlab.cli import main
from advlab.report.reproduction import render_reproduction, reproduction_markdown
from advlab.reproduce import EXPERIMENTS, Config
from advlab.reproduce.outcome import VERDICTS, mean_std, pm
from advlab.reproduce.runner import fingerprint, run_experiments, run_one

PAPERS_ROWS = 25


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(EXPERIMENTS, "toy", "reproduce_toy")
    reproduce_toy.CALLS.clear()
    reproduce_toy.FAIL.clear()
    return reproduce_toy


def test_registry_names_one_module_per_paper_row_with_its_protocol() -> None:
    """Read without importing (the modules import torch): docstring, constants, ``run``."""
    assert len(EXPERIMENTS) == PAPERS_ROWS
    for name, path in EXPERIMENTS.items():
        spec = importlib.util.find_spec(path)
        assert spec is not None and spec.origin, name
        tree = ast.parse(Path(spec.origin).read_text())
        doc = " ".join((ast.get_docstring(tree) or "").split())
        assert "Paper" in doc and "Here:" in doc and "Scaled down" in doc, name
        constants = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name)}
        assert {"PAPER", "CLAIM", "DATASETS"} <= set(constants), name
        assert any(isinstance(n, ast.FunctionDef) and n.name == "run" and
                   [a.arg for a in n.args.args] == ["config"] for n in tree.body), name


def test_listing_does_not_import_torch() -> None:
    code = ("import sys; from advlab.cli import main; main(['reproduce', '--list']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "pgd-madry" in out.stderr and "malware-add-only" in out.stderr


def test_mean_std_and_pm() -> None:
    stat = mean_std([0.5, 0.7, float("nan")])
    assert stat["n"] == 2 and stat["mean"] == pytest.approx(0.6)
    assert stat["std"] == pytest.approx(0.1414, abs=1e-3)
    assert pm(stat) == "60.0 ± 14.1 %"
    assert pm(mean_std([0.25])) == "25.0 %"


def test_missing_data_is_skipped_with_the_option_it_needs(toy) -> None:
    r = run_one("toy", Config(dataset="nsl-kdd"))
    assert r["status"] == "skipped" and r["reason"] == "skipped: needs --nsl-kdd"
    assert toy.CALLS == []
    r = run_one("toy", Config(dataset="tuandromd"))  # not allowed: the default (digits) runs
    assert r["status"] == "done" and r["dataset"] == "digits" and toy.CALLS == ["digits"]
    assert r["verdict"] in VERDICTS and r["spread"].endswith("%")
    assert r["command"] == "advlab reproduce toy --out DIR"


def test_cache_is_reused_and_resumed_and_keyed_by_the_configuration(toy, tmp_path) -> None:
    config = Config(seeds=2)
    first = run_experiments(["toy"], config, tmp_path, progress=False)
    assert toy.CALLS == ["digits"] and first[0]["status"] == "done"
    record = json.loads((tmp_path / "toy.json").read_text())
    assert record["fingerprint"] == fingerprint("toy", config, "digits")
    again = run_experiments(["toy"], config, tmp_path, progress=False)
    assert toy.CALLS == ["digits"] and again[0]["cached"]
    assert again[0]["figure"] == first[0]["figure"]
    run_experiments(["toy"], Config(seeds=3), tmp_path, progress=False)  # new fingerprint
    assert len(toy.CALLS) == 2


def test_failures_are_recorded_and_rerun(toy, tmp_path) -> None:
    toy.FAIL.append(True)
    r = run_experiments(["toy"], Config(), tmp_path, progress=False)[0]
    assert r["status"] == "failed" and "toy failure" in r["error"]
    toy.FAIL.clear()
    r = run_experiments(["toy"], Config(), tmp_path, progress=False)[0]
    assert r["status"] == "done" and len(toy.CALLS) == 2


def test_cli_writes_results_page_and_markdown(toy, tmp_path, capsys) -> None:
    md = tmp_path / "reproduction.md"
    assert main(["reproduce", "toy", "--quick", "--seeds", "2", "--out", str(tmp_path / "o"),
                 "--markdown", str(md), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experiments"] == [{"name": "toy", "status": "done",
                                   "verdict": "reproduced at laptop scale"}]
    html = (tmp_path / "o" / "reproduction.html").read_text()
    assert 'id="row-toy"' in html and html.count("<svg") == 2
    text = md.read_text()
    assert "advlab reproduce toy --quick --seeds 2" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 3 and "(Toy, Test 2026)" in table[2]  # header, rule, one experiment


@pytest.mark.parametrize("argv", [["reproduce", "--out", "x"], ["reproduce", "nope", "--out", "x"],
                                  ["reproduce", "fgsm"], ["reproduce", "fgsm", "--out", "x",
                                                          "--nsl-kdd", "/no/such/dir"]])
def test_cli_usage_errors(argv, capsys) -> None:
    assert main(argv) == 2
    assert "advlab: error" in capsys.readouterr().err


def test_page_has_a_row_per_experiment_of_every_status(toy) -> None:
    done = run_one("toy", Config())
    skipped = {**run_one("toy", Config(dataset="nsl-kdd")), "name": "toy2"}
    failed = {**done, "name": "toy3", "status": "failed", "error": "boom"}
    html = render_reproduction([done, skipped, failed], {"quick": True, "seconds": 1})
    for name in ("toy", "toy2", "toy3"):
        assert f'data-experiment="{name}"' in html
    assert "skipped: needs --nsl-kdd" in html and "boom" in html
    md = reproduction_markdown([done, skipped], {"quick": True, "seconds": 60})
    assert "--quick (smoke) protocol" in md and "compute time 1.0 min" in md
    assert "**skipped**: skipped: needs --nsl-kdd" in md


@pytest.mark.slow
def test_a_real_experiment_at_its_smallest(tmp_path) -> None:
    r = run_experiments(["svm-injection"], Config(quick=True, seeds=1), tmp_path,
                        progress=False)[0]
    assert r["status"] == "done", r.get("traceback")
    assert r["verdict"] in VERDICTS and r["seeds"] == [0]
    clean = r["metrics"]["clean_error"]["mean"]
    assert 0 <= clean <= r["metrics"]["error_3_points"]["mean"] <= 1
    assert Path(tmp_path / "svm-injection.json").is_file()

"""`evaluate(..., compile=, precision=)` and `advlab evaluate --compile --precision`: the passes
reach the attacks that take them, are recorded, and never change how successes are scored."""

from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext

import pytest
import torch
from torch import nn

from advlab import accelerate
from advlab.cli import main
from advlab.data import load
from advlab.evaluation import config as evaluation_config
from advlab.evaluation import evaluate
from advlab.evaluation.config import ConfigError
from advlab.evaluation.passes import PrecisionWarning, apply_passes
from advlab.evaluation.runs import build_runs

ATTACKS = ["fgsm", {"name": "pgd", "steps": 8}, {"name": "deepfool", "steps": 10}]
GRID = {"linf": [0.1, 0.3], "l2": [1.0]}
KW = dict(n=40, batch_size=20, seed=1, progress=False, checks=False)


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    return model, load("digits")


class Spy(nn.Module):
    """Records, per call: a gradient pass?, autocast on?, the logits' dtype."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        self.calls.append((torch.is_grad_enabled() and x.requires_grad,
                           torch.is_autocast_enabled("cpu"), out.dtype))
        return out


def _runs(ev) -> dict[tuple[str, float | None], dict]:
    return {(run["label"], run["eps"]): run for r in ev.records for run in r["runs"]}


def test_the_default_is_eager_float32_and_is_recorded(digits) -> None:
    model, data = digits
    config = evaluate(model, data, ATTACKS, GRID, **KW).summary["config"]
    assert config["compile"] is False and config["precision"] == "fp32"
    assert all("compile" not in a["params"] and "precision" not in a["params"]
               for a in config["attacks"])


def test_a_compiled_evaluation_equals_the_eager_one_within_float_tolerance(
        digits, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the compiled path of the gradient pass (detached parameters, row chunks, the
    padding of a single row), with torch.compile itself replaced by the traced function: a real
    inductor compilation takes tens of seconds; test_inductor_evaluation_equals_eager and
    test_pgd_passes (marked slow) compare the inductor code."""
    model, data = digits
    compiled = []

    def no_codegen(fn, **options):
        compiled.append(options)
        return fn

    monkeypatch.setattr(torch, "compile", no_codegen)
    monkeypatch.setattr(accelerate, "_compiled", OrderedDict())  # none of them leaks out
    eager = evaluate(model, data, ATTACKS, GRID, **KW)
    fast = evaluate(model, data, ATTACKS, GRID, compile=True, **KW)
    assert compiled and all(o["dynamic"] for o in compiled)  # one graph for every batch size
    config = fast.summary["config"]
    assert config["compile"] is True
    params = {a["label"]: a["params"] for a in config["attacks"]}
    assert params["fgsm"]["compile"] and params["pgd"]["compile"]
    assert "compile" not in params["deepfool"]  # it takes no such knob
    a, b = _runs(eager), _runs(fast)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key]["success"] == a[key]["success"], key
        for norm in ("linf", "l2"):
            assert b[key][norm] == pytest.approx(a[key][norm], abs=1e-5), key
    assert [r["robust_accuracy"] for r in fast.summary["results"]] == \
        [r["robust_accuracy"] for r in eager.summary["results"]]


def test_bf16_passes_propose_and_float32_decides_and_scores(digits) -> None:
    model, data = digits
    spy = Spy(model).eval()
    with pytest.warns(PrecisionWarning, match="emulated") if not accelerate.native("bf16") \
            else nullcontext():
        ev = evaluate(spy, data, ATTACKS[:2], {"linf": [0.3]}, precision="bf16", **KW)
    assert ev.summary["config"]["precision"] == "bf16"
    grads = [c for c in spy.calls if c[0]]
    plain = [c for c in spy.calls if not c[0]]
    assert any(autocast and dtype == torch.bfloat16 for _, autocast, dtype in grads)
    # every forward without a gradient (the float32 confirmation of a candidate success, the
    # final check and the scoring) ran without autocast, in float32
    assert plain and all(not autocast and dtype == torch.float32 for _, autocast, dtype in plain)
    runs = _runs(ev)
    assert any(any(r["success"]) for r in runs.values())
    eager = _runs(evaluate(model, data, ATTACKS[:2], {"linf": [0.3]}, **KW))
    for key, run in runs.items():  # the same attack at the same budget: a close strength
        assert abs(sum(run["success"]) - sum(eager[key]["success"])) <= 0.25 * len(run["success"])


def test_a_precision_the_device_cannot_run_is_refused_before_any_work(
        digits, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    model, data = digits
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda kind: False)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="precision 'fp16': autocast is not available on 'cpu'"):
        evaluate(model, data, ATTACKS, GRID, precision="fp16", out_dir=out, **KW)
    assert not out.exists()
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        evaluate(model, data, ATTACKS, GRID, precision="fp8", **KW)
    with pytest.raises(ValueError, match="compile must be True or False"):
        evaluate(model, data, ATTACKS, GRID, compile="yes", **KW)  # type: ignore[arg-type]
    code = main(["evaluate", "--model", str(tmp_path / "no-model"), "--attack", "pgd",
                 "--eps", "linf=0.1", "--precision", "bf16", "--out", str(out)])
    assert code == 2
    assert "precision 'bf16': autocast is not available on 'cpu'" in capsys.readouterr().err


@pytest.mark.slow
def test_inductor_evaluation_equals_eager(digits, monkeypatch: pytest.MonkeyPatch) -> None:
    model, data = digits
    monkeypatch.setattr(accelerate, "_compiled", OrderedDict())
    attacks, grid = ATTACKS[:2], {"linf": [0.3]}
    a = _runs(evaluate(model, data, attacks, grid, **KW))
    b = _runs(evaluate(model, data, attacks, grid, compile=True, **KW))
    for key in a:
        assert b[key]["success"] == a[key]["success"], key
        assert b[key]["linf"] == pytest.approx(a[key]["linf"], abs=1e-5), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_bf16_on_a_cuda_device_without_it_is_refused() -> None:
    if torch.cuda.is_bf16_supported():
        accelerate.check_precision("bf16", "cuda")
    else:
        with pytest.raises(ValueError, match="no bfloat16 support"):
            accelerate.check_precision("bf16", "cuda")


def test_an_attack_s_own_knob_wins_over_the_evaluation_s() -> None:
    runs = build_runs([{"name": "pgd", "precision": "fp32", "compile": False}, "fgsm", "deepfool"])
    with pytest.warns(PrecisionWarning) if not accelerate.native("fp16") else nullcontext():
        got = apply_passes(runs, compile=True, precision="fp16", device=torch.device("cpu"))
    assert [dict(r.params) for r in got] == [{"precision": "fp32", "compile": False},
                                             {"compile": True, "precision": "fp16"}, {}]
    assert apply_passes(runs, compile=False, precision="fp32", device=torch.device("cpu")) == runs


def test_config_file_keys_and_flags() -> None:
    base = {"model": "m", "attack": [{"name": "pgd"}], "eps": {"linf": [0.1]}}
    cfg = evaluation_config.build({**base, "compile": True, "precision": "bf16"}, {}, "e.toml")
    assert cfg.compile is True and cfg.precision == "bf16"
    assert cfg.as_dict()["precision"] == "bf16"
    flags = evaluation_config.build({**base, "compile": True, "precision": "bf16"},
                                    {"compile": False, "precision": "fp16"}, "e.toml")
    assert flags.compile is False and flags.precision == "fp16"
    default = evaluation_config.build(base, {}, "e.toml")
    assert default.compile is False and default.precision == "fp32"
    with pytest.raises(ConfigError, match="compile must be true or false, got 'yes'"):
        evaluation_config.build({**base, "compile": "yes"}, {}, "e.toml")
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16"):
        evaluation_config.build({**base, "precision": "half"}, {}, "e.toml")

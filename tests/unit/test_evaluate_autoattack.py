"""AutoAttack in the evaluation (issue 15): the suite, the cascade per sample in the records and
in the summary, resume, the report's breakdown, the advice checks, and EOT in the rand version."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel
from advlab.attacks import autoattack_cascade
from advlab.data import load
from advlab.data.base import Dataset
from advlab.evaluation import evaluate
from advlab.evaluation.cascade import cascade_summary, suite_entries
from advlab.evaluation.checks import Check, advice_checks
from advlab.evaluation.config import ConfigError, build
from advlab.models import mlp, train_classifier
from advlab.models.wrappers import QueryCounter
from advlab.report import render_html

SMALL = {"steps": 5, "n_targets": 2, "max_queries": 30}  # small budgets: a fast test
GRID = {"linf": [0.05, 0.15]}


@pytest.fixture(scope="module")
def digits_mlp():
    data = load("digits")
    torch.manual_seed(0)
    model = train_classifier(data, "mlp", epochs=3, lr=3e-3, batch_size=64, val_fraction=0,
                             progress=False).model.eval()
    return model, data


def _entries() -> list[dict]:
    return ["fgsm", *[{**e, **SMALL} for e in suite_entries("autoattack", ["linf"])]]


def _stable(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in ("created", "timing")}
    out["results"] = [{k: v for k, v in r.items() if k != "seconds"} for r in summary["results"]]
    return out


def test_suite_row_carries_the_cascade(digits_mlp) -> None:
    model, data = digits_mlp
    ev = evaluate(model, data, _entries(), GRID, n=40, batch_size=20, seed=1, progress=False,
                  checks=False)
    correct = round(ev.clean_accuracy * 40)
    for eps in GRID["linf"]:
        row = next(r for r in ev.summary["results"]
                   if r["attack"] == "AutoAttack (standard)" and r["eps"] == eps)
        stages = row["cascade"]
        assert [s["stage"] for s in stages] == ["apgd-ce", "apgd-t", "fab-t", "square"]
        assert stages[0]["attacked"] == correct
        for before, after in zip(stages, stages[1:], strict=False):
            assert after["attacked"] == before["attacked"] - before["removed"]
        robust = stages[-1]["attacked"] - stages[-1]["removed"]
        assert robust == round(row["robust_accuracy"] * 40)
        assert stages[-1]["robust_after"] == pytest.approx(row["robust_accuracy"])
        assert row["robust_accuracy"] <= ev.robust_accuracy("fgsm", eps)
    # the per-sample record: the stage that broke each sample
    record = next(r for r in ev.records[0]["runs"] if r["label"] == "AutoAttack (standard)")
    assert record["stages"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert all(-1 <= b < 4 for b in record["broken_by"])
    assert [b >= 0 for b in record["broken_by"]] == [
        s and c for s, c in zip(record["success"], ev.records[0]["clean_correct"], strict=True)]
    html = render_html(ev.summary)
    assert 'id="cascade-table"' in html and "fab-t" in html


def test_cascade_survives_resume_and_rebatching(digits_mlp, tmp_path) -> None:
    model, data = digits_mlp
    kw = dict(n=40, seed=1, progress=False, checks=False)
    full = evaluate(model, data, _entries(), GRID, batch_size=20, out_dir=tmp_path / "a", **kw)

    class Stop(Exception):
        pass

    def stop(b: int) -> None:
        if b == 0:
            raise Stop

    with pytest.raises(Stop):
        evaluate(model, data, _entries(), GRID, batch_size=20, out_dir=tmp_path / "b",
                 on_batch=stop, **kw)
    resumed = evaluate(model, data, _entries(), GRID, batch_size=20, out_dir=tmp_path / "b",
                       resume=True, **kw)
    assert _stable(resumed.summary) == _stable(full.summary)
    assert (tmp_path / "a" / "summary.json").read_bytes() == \
        (tmp_path / "b" / "summary.json").read_bytes()


def test_a_record_without_its_cascade_is_recomputed(digits_mlp, tmp_path) -> None:
    model, data = digits_mlp
    kw = dict(n=20, batch_size=20, seed=1, progress=False, checks=False, out_dir=tmp_path)
    first = evaluate(model, data, _entries(), GRID, **kw)
    path = tmp_path / "results.jsonl"
    header, line = path.read_text().splitlines()
    record = json.loads(line)
    del record["runs"][-1]["broken_by"]
    path.write_text(header + "\n" + json.dumps(record) + "\n")
    with pytest.warns(UserWarning, match="broken_by must be a list of 20 stage indices"):
        again = evaluate(model, data, _entries(), GRID, resume=True, **kw)
    assert _stable(again.summary) == _stable(first.summary)


def test_cascade_summary_counts() -> None:
    import numpy as np

    broken = np.array([0, -1, 1, 0, -1, 2])
    correct = np.array([True, True, True, True, False, True])
    rows = cascade_summary(["a", "b", "c"], broken, correct)
    assert [(r["attacked"], r["removed"]) for r in rows] == [(5, 2), (3, 1), (2, 1)]
    assert rows[-1]["robust_after"] == pytest.approx(1 / 6)


def test_config_suite_key_and_flag(tmp_path) -> None:
    config = build({"model": "m", "suite": "autoattack", "eps": {"linf": [0.1], "l2": [1.0]}},
                   {})
    labels = [(a["label"], a["norm"], a["version"]) for a in config.attacks]
    assert labels == [("AutoAttack (standard, linf)", "linf", "standard"),
                      ("AutoAttack (standard, l2)", "l2", "standard")]
    both = build({"model": "m", "attack": ["fgsm"], "eps": {"linf": [0.1]}},
                 {"suite": "autoattack-rand"})
    assert [a["name"] for a in both.attacks] == ["fgsm", "autoattack"]
    assert both.attacks[1]["label"] == "AutoAttack (rand)"
    with pytest.raises(ConfigError, match="suite must be one of autoattack"):
        build({"model": "m", "suite": "autoatack", "eps": {"linf": [0.1]}}, {})
    with pytest.raises(ConfigError, match="missing key 'attack'"):
        build({"model": "m", "eps": {"linf": [0.1]}}, {})
    with pytest.raises(ConfigError, match="AutoAttack supports the norms"):
        build({"model": "m", "suite": "autoattack", "eps": {"l0": [3]}}, {})


def test_suite_on_a_constrained_tabular_domain() -> None:
    """NSL-KDD-like: integer and one-hot features; the cascade's points stay valid."""
    gen = torch.Generator().manual_seed(0)
    kinds = ["continuous"] * 4 + ["integer"] * 2 + ["binary"] * 3
    domain = Domain(torch.zeros(9), torch.tensor([1.0] * 4 + [5.0] * 2 + [1.0] * 3),
                    kinds=kinds, one_hot_groups=[(6, 7, 8)])
    x = torch.rand(120, 9, generator=gen)
    x[:, 4:6] = (x[:, 4:6] * 5).round()
    x[:, 6:] = torch.nn.functional.one_hot(torch.randint(0, 3, (120,), generator=gen), 3).float()
    y = (x[:, 0] + x[:, 4] / 5 > 0.9).long()
    ds = Dataset("toy-tabular", x[:80], y[:80], x[80:], y[80:], domain,
                 tuple(f"f{i}" for i in range(9)), ("normal", "attack"))
    model = nn.Linear(9, 2)  # the labelling rule itself: clean accuracy 1
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1, 0], model.weight[1, 4] = 1.0, 0.2
        model.bias.copy_(torch.tensor([0.0, -0.9]))
    entries = [{**e, **SMALL} for e in suite_entries("autoattack", ["linf"])]
    ev = evaluate(model, ds, entries, {"linf": [0.3]}, n=40,
                  batch_size=40, progress=False, checks=False)
    row = ev.summary["results"][0]
    assert row["attack"] == "AutoAttack (standard)" and row["valid_rate"] == 1.0
    assert [s["stage"] for s in row["cascade"]] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert ev.clean_accuracy == 1.0 and row["cascade"][0]["removed"] > 0


class Noisy(nn.Module):
    """A randomized defense whose prediction never changes: each row's logits are scaled by a
    random factor in [1, 1.1] (drawn from its own generator)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.gen = model, torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * (1 + 0.1 * torch.rand(x.shape[0], 1, generator=self.gen))


def test_rand_version_averages_the_gradient_over_twenty_draws() -> None:
    from advlab.attacks import apgd

    torch.manual_seed(0)
    model = mlp(10, 4, hidden=(16,)).eval()
    x = torch.rand(8, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    threat = ThreatModel("linf", 1e-4, Domain(0.0, 1.0))  # nothing breaks: every step runs
    one_draw = 0
    for loss in ("ce", "dlr"):
        counter = QueryCounter(Noisy(model))
        apgd(counter, x, y, threat, loss=loss, steps=4, generator=torch.Generator())
        one_draw += counter.gradients
    counter = QueryCounter(Noisy(model))
    result = autoattack_cascade(counter, x, y, threat, version="rand", steps=4,
                                generator=torch.Generator().manual_seed(0))
    assert [s.name for s in result.stages] == ["apgd-ce", "apgd-dlr"]
    assert [s.attacked for s in result.stages] == [8, 8] and not result.robust.logical_not().any()
    assert counter.gradients == 20 * one_draw  # every gradient pass is a mean over 20 draws


def _checks(**failed: bool) -> list[Check]:
    names = ["eval_mode", "deterministic", "gradients_nonzero",
             "gradient_agrees_with_finite_differences", "iterative_at_least_single_step"]
    return [Check(n, not failed.get(n, False), "e", "m") for n in names]


def _summary(*attacks: dict) -> dict:
    return {"config": {"attacks": list(attacks)},
            "worst_case": [{"norm": "linf", "eps": 0.1,
                            "attacks": [a["label"] for a in attacks]}]}


def test_advice_names_the_adaptive_attack() -> None:
    pgd = {"label": "pgd", "name": "pgd", "params": {}}
    rand = {"label": "AutoAttack (rand)", "name": "autoattack", "params": {"version": "rand"}}
    clean = {c.name: c for c in advice_checks(_checks(), _summary(pgd))}
    assert clean["adaptive_attack"].passed
    assert clean["worst_case_autoattack"].passed  # no symptom: a recommendation only
    assert "--suite autoattack" in clean["worst_case_autoattack"].meaning
    random = {c.name: c for c in advice_checks(_checks(deterministic=True), _summary(pgd))}
    assert not random["adaptive_attack"].passed
    assert "EOT" in random["adaptive_attack"].meaning
    assert "--suite autoattack-rand" in random["adaptive_attack"].meaning
    covered = advice_checks(_checks(deterministic=True), _summary(pgd, rand))
    assert covered[0].passed and "EOT ran" in covered[0].evidence
    frozen = {c.name: c for c in advice_checks(
        _checks(gradient_agrees_with_finite_differences=True), _summary(pgd))}
    assert not frozen["adaptive_attack"].passed
    assert "BPDA" in frozen["adaptive_attack"].meaning
    assert "bpda" in frozen["adaptive_attack"].meaning
    assert not frozen["worst_case_autoattack"].passed
    assert "--suite autoattack" in frozen["worst_case_autoattack"].meaning
    vanishing = advice_checks(_checks(gradients_nonzero=True), _summary(pgd))[0]
    assert not vanishing.passed and "distillation" in vanishing.meaning
    assert "--suite autoattack" in vanishing.meaning and "bpda" in vanishing.meaning
    std = {"label": "AutoAttack (standard)", "name": "autoattack", "params": {}}
    done = advice_checks(_checks(gradients_nonzero=True), _summary(pgd, std))
    assert done[1].passed and done[1].severity == "error"

"""The evaluation runner: aggregates from per-sample records, worst case, curves, resume, export."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from advlab.data import load
from advlab.evaluation import ResumeError, evaluate
from advlab.evaluation.runs import build_runs, normalise_eps_grid
from advlab.models import train_classifier

ATTACKS = ["fgsm", {"name": "pgd", "steps": 5}, {"name": "deepfool", "steps": 20}]
GRID = {"linf": [0.05, 0.1, 0.3], "l2": [0.5, 1.0, 2.0]}
VOLATILE = ("created", "timing")


@pytest.fixture(scope="module")
def digits_mlp():
    data = load("digits")
    torch.manual_seed(0)
    trained = train_classifier(data, "mlp", epochs=5, lr=3e-3, batch_size=64, val_fraction=0,
                               progress=False)
    return trained.model.eval(), data


def _stable(summary: dict) -> dict:
    """A summary without what measures the machine (timings) rather than the model."""
    out = {k: v for k, v in summary.items() if k not in VOLATILE}
    out["results"] = [{k: v for k, v in r.items() if k != "seconds"} for r in summary["results"]]
    return out


def _run(model, data, **kwargs):
    kw = dict(n=60, batch_size=20, seed=3, progress=False, checks=False)
    kw.update(kwargs)
    return evaluate(model, data, ATTACKS, GRID, **kw)


def test_worst_case_is_the_per_sample_minimum(digits_mlp) -> None:
    model, data = digits_mlp
    ev = _run(model, data)
    records = ev.records
    correct = np.concatenate([r["clean_correct"] for r in records])
    assert ev.clean_accuracy == pytest.approx(correct.mean())
    for eps in GRID["linf"]:
        robust = correct.copy()
        for label in ("fgsm", "pgd"):
            success = np.concatenate([next(run["success"] for run in r["runs"]
                                           if run["label"] == label and run["eps"] == eps)
                                      for r in records])
            robust &= ~success
            assert ev.robust_accuracy(label, eps) == pytest.approx((correct & ~success).mean())
        assert ev.worst_case("linf", eps) == pytest.approx(robust.mean())
        assert ev.worst_case("linf", eps) <= min(ev.robust_accuracy("fgsm", eps),
                                                 ev.robust_accuracy("pgd", eps))


def test_minimal_norm_curve_comes_from_one_run(digits_mlp) -> None:
    model, data = digits_mlp
    ev = _run(model, data)
    rows = [r for r in ev.summary["results"] if r["attack"] == "deepfool"]
    unbounded = [r for r in rows if r["eps"] is None]
    assert len(unbounded) == 1 and unbounded[0]["gradients"] > 0
    derived = [r for r in rows if r["eps"] is not None]
    assert [r["eps"] for r in derived] == GRID["l2"]
    assert all(r["derived"] and r["gradients"] == 0 for r in derived)
    # robust accuracy at eps = share of correct samples whose minimal norm exceeds eps
    l2 = np.concatenate([next(run["l2"] for run in r["runs"] if run["label"] == "deepfool")
                         for r in ev.records])
    ok = np.concatenate([next(run["success"] for run in r["runs"] if run["label"] == "deepfool")
                         for r in ev.records])
    correct = np.concatenate([r["clean_correct"] for r in ev.records])
    for row in derived:
        expected = (correct & ~(ok & (l2 <= row["eps"] + 1e-6 * max(1, row["eps"])))).mean()
        assert row["robust_accuracy"] == pytest.approx(expected)
    curve = ev.summary["curves"]["l2"]["series"]["deepfool"]
    assert curve[0] == pytest.approx(ev.clean_accuracy)
    assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))
    assert unbounded[0]["empirical_robustness"] > 0
    # the dense curve (a step at each minimal norm) agrees with the grid rows where they meet
    dense = ev.summary["curves"]["l2"]["minimal_norm"]["deepfool"]
    steps = np.array(dense["eps"])
    values = np.array(dense["robust_accuracy"])
    assert np.all(np.diff(steps) >= 0) and np.all(np.diff(values) <= 0)
    for eps, robust in zip(ev.summary["curves"]["l2"]["eps"], curve, strict=True):
        at = values[np.searchsorted(steps, eps, side="right") - 1]
        assert at == pytest.approx(robust, abs=1.5 / len(correct))


def test_curves_start_at_clean_accuracy_and_worst_case_is_lowest(digits_mlp) -> None:
    model, data = digits_mlp
    ev = _run(model, data)
    curves = ev.summary["curves"]["linf"]
    assert curves["eps"] == [0.0, *GRID["linf"]]
    worst = curves["series"]["worst case"]
    for label in ("fgsm", "pgd"):
        series = curves["series"][label]
        assert series[0] == pytest.approx(ev.clean_accuracy)
        assert all(w <= s + 1e-12 for w, s in zip(worst, series, strict=True))
    per_class = ev.summary["worst_case"][0]["per_class_robust_accuracy"]
    assert len(per_class) == data.num_classes


def test_same_seed_same_summary_and_resume_after_interruption(digits_mlp, tmp_path) -> None:
    model, data = digits_mlp
    reference = _run(model, data, out_dir=tmp_path / "full")

    class Interrupted(Exception):
        pass

    def stop_after_two(b: int) -> None:
        if b == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        _run(model, data, out_dir=tmp_path / "cut", on_batch=stop_after_two)
    lines = (tmp_path / "cut" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3  # header + 2 complete batches
    with (tmp_path / "cut" / "results.jsonl").open("a") as f:
        f.write('{"type": "batch", "batch": 2, "ind')  # a line torn by a kill
    resumed = _run(model, data, out_dir=tmp_path / "cut", resume=True)
    assert _stable(resumed.summary) == _stable(reference.summary)
    on_disk = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert _stable(on_disk) == _stable(reference.summary)
    assert len((tmp_path / "cut" / "results.jsonl").read_text().splitlines()) == 4


def test_resume_refuses_another_configuration(digits_mlp, tmp_path) -> None:
    model, data = digits_mlp
    _run(model, data, out_dir=tmp_path)
    with pytest.raises(ResumeError, match="different configuration"):
        _run(model, data, out_dir=tmp_path, resume=True, seed=4)


def test_exports(digits_mlp, tmp_path) -> None:
    model, data = digits_mlp
    ev = _run(model, data)
    csv_text = ev.to_csv(tmp_path / "r.csv").read_text().splitlines()
    assert csv_text[0].startswith("attack,name,norm,eps")
    assert len(csv_text) == 1 + len(ev.summary["results"])
    loaded = json.loads(ev.to_json(tmp_path / "s.json").read_text())
    assert loaded["clean_accuracy"] == ev.clean_accuracy
    import pandas  # optional for users, installed by the dev extra
    frame = ev.to_dataframe()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == len(ev.summary["results"])


def test_counts_and_gallery(digits_mlp) -> None:
    model, data = digits_mlp
    ev = _run(model, data)
    pgd = [r for r in ev.summary["results"] if r["attack"] == "pgd"]
    assert all(0 < r["gradients"] <= 60 * 5 for r in pgd)  # early stopping: at most n x steps
    fgsm = [r for r in ev.summary["results"] if r["attack"] == "fgsm"]
    assert all(r["gradients"] == 60 for r in fgsm)
    assert all(r["valid_rate"] == 1.0 for r in ev.summary["results"])
    for example in ev.summary["gallery"]:
        assert len(example["clean"]) == math.prod(example["shape"]) == 64
        assert example["adv_pred"] != example["label"]


@pytest.mark.parametrize("grid, message", [
    ({"linf": [-0.1]}, "positive"), ({"linf": [0.1]}, "no eps given for the norm"),
    ({"lx": [0.1]}, "unknown norm"), ([0.1, float("nan")], "norms"),
])
def test_bad_eps_grids(grid, message) -> None:
    runs = build_runs(["fgsm", "deepfool"])
    with pytest.raises(ValueError, match=message):
        normalise_eps_grid(grid, runs)


@pytest.mark.parametrize("entry, message", [
    ("nope", "unknown attack 'nope'"), ({"name": "pgd", "stepz": 3}, "no parameter 'stepz'"),
    ({"name": "jsma", "norm": "l2"}, "supports the norms l0"),
    ({"name": "pgd", "steps": "many"}, "not int"),
    ({"name": "deepfool", "target": "random"}, "no targeted mode"),
])
def test_bad_attack_entries(entry, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_runs([entry])


def test_labels_are_unique() -> None:
    runs = build_runs(["pgd", {"name": "pgd", "norm": "l2"}, {"name": "pgd", "constraints": "box"}])
    assert [r.label for r in runs] == ["pgd-linf", "pgd-l2", "pgd-linf (box only)"]


def test_box_only_runs_do_not_lower_the_worst_case(digits_mlp) -> None:
    """An unconstrained run attacks a larger threat model: reported, but not in the worst case."""
    model, data = digits_mlp
    ev = evaluate(model, data, ["fgsm", {"name": "pgd", "steps": 5, "constraints": "box"}],
                  [0.1], n=40, batch_size=40, seed=0, progress=False, checks=False)
    assert ev.summary["worst_case"][0]["attacks"] == ["fgsm"]
    assert ev.worst_case("linf", 0.1) == ev.robust_accuracy("fgsm", 0.1)
    only_box = evaluate(model, data, [{"name": "pgd", "steps": 5, "constraints": "box"}], [0.1],
                        n=40, batch_size=40, seed=0, progress=False, checks=False)
    assert only_box.summary["worst_case"][0]["attacks"] == ["pgd (box only)"]


def test_tabular_section_counts_only_needed_perturbations() -> None:
    """Per-feature figures are over the successes on clean-correct samples: rates <= 1."""
    from advlab.data.base import Dataset
    from advlab.domain import Domain

    digits = load("digits")
    flat = Dataset("digits-flat", digits.x_train.flatten(1), digits.y_train,
                   digits.x_test.flatten(1), digits.y_test, Domain(0.0, 1.0, n_features=64),
                   tuple(f"px{i}" for i in range(64)), digits.class_names)
    torch.manual_seed(0)
    model = train_classifier(flat, "mlp", epochs=2, val_fraction=0, progress=False).model
    ev = evaluate(model, flat, ["fgsm"], [0.3], n=80, batch_size=40, progress=False,
                  checks=False)
    entry = ev.summary["tabular"]["fgsm@0.3"]
    assert entry["successes"] > 0 and entry["valid_rate"] == 1.0
    assert all(0 < f["changed_rate"] <= 1 for f in entry["top_features"])
    assert ev.summary["gallery"] == []

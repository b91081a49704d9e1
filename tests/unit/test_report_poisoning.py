"""The poisoning report renders from summary.json alone and refuses other summaries."""

from __future__ import annotations

import json

import pytest

from advlab.report.poisoning import (
    SCHEMA,
    curve_figure,
    render_poisoning_page,
    write_poisoning_report,
)


def summary() -> dict:
    rows = [{"level": lv, "seed": s, "n_poisoned": int(lv * 100), "test_accuracy": 0.9 - lv,
             "backdoor_success": min(1.0, 10 * lv)} for lv in (0.0, 0.01, 0.05) for s in (0, 1)]
    return {"schema": SCHEMA, "attack": "backdoor", "dataset": "digits <b>", "learner": "mlp",
            "metrics": {"n_poisoned": 5, "n_train": 100, "clean_accuracy": 0.9,
                        "poisoned_accuracy": 0.85, "backdoor_success": 0.5},
            "curve": {"level_name": "rate", "rows": rows,
                      "medians": {"test_accuracy": {"0.0": 0.9, "0.01": 0.89, "0.05": 0.85}}},
            "defense": {"method": "activation clustering", "precision": 0.5, "recall": 1.0,
                        "removed": 10.0},
            "examples": {"shape": [1, 2, 2], "clean": [[0, 0, 0, 0]], "triggered": [[1, 1, 1, 1]]},
            "config": {"rate": 0.05}}


def test_page_shows_the_cards_curve_filter_and_examples() -> None:
    html = render_poisoning_page(summary())
    assert "digits &lt;b&gt;" in html and "<b>" not in html.split("<body>")[1].split("</h1>")[0]
    for text in ("ROWS POISONED", "BACKDOOR SUCCESS", "50.0 %", "Poisoning curve",
                 "Training-set filter", "100.0 %", "Triggered examples", "5.0 %"):
        assert text in html, text
    assert html.count("<svg") == 2 and "<script" not in html


def test_empty_curve_draws_nothing() -> None:
    assert curve_figure({"rows": []}) is None
    assert "No curve recorded." in render_poisoning_page({"schema": SCHEMA})


def test_write_refuses_an_evaluation_summary(tmp_path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"schema": "advlab.evaluation/1"}))
    with pytest.raises(ValueError, match="not a poisoning summary"):
        write_poisoning_report(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps(summary()))
    first = write_poisoning_report(tmp_path).read_bytes()
    assert write_poisoning_report(tmp_path).read_bytes() == first  # deterministic

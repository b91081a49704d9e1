"""The tree report pieces: robust-accuracy rows, the feature table, the model card rows."""

from __future__ import annotations

import math

import torch

from advlab.report.trees import card_rows, feature_rows, markdown, robust_accuracy_rows
from tree_fixtures import toy_ensemble


def test_robust_accuracy_rows_count_each_radius_against_eps() -> None:
    minimal = torch.tensor([0.1, 0.3, math.inf, 0.05])
    upper = torch.tensor([0.2, 0.3, math.inf, 0.4])
    radius = torch.tensor([0.05, 0.2, 0.5, 0.0])
    correct = torch.tensor([True, True, True, False])
    rows = robust_accuracy_rows(minimal, upper, radius, correct, [0.1, 0.25])
    assert rows[0] == {"eps": 0.1, "certified": 0.5, "exact (MILP)": 0.5,
                       "empirical (attack)": 0.75}
    assert rows[1]["certified"] == 0.25 and rows[1]["exact (MILP)"] == 0.5
    assert "50.0%" in markdown(rows)


def test_feature_rows_list_changed_features_most_often_first() -> None:
    x = torch.zeros(3, 3)
    x_adv = torch.tensor([[0.0, 0.5, 0.1], [0.0, -0.2, 0.0], [0.3, 0.3, 0.0]])
    rows = feature_rows(x, x_adv, torch.tensor([True, True, False]), ["a", "b", "c"])
    assert [r["feature"] for r in rows] == ["b", "c"]
    assert rows[0]["changed in"] == "2/2" and rows[0]["up / down"] == "1 / 1"
    assert rows[0]["max abs delta"] == 0.5


def test_card_rows_name_the_trees() -> None:
    rows = card_rows(toy_ensemble().card(["x0", "x1"]))
    values = {r["property"]: r["value"] for r in rows}
    assert values["trees"] == 3 and values["max depth"] == 1 and values["features used"] == 2
    assert values["most split features (splits)"].startswith("x0 (2)")

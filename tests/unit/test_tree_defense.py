"""Hardening trees by adversarial boosting, and poisoning the tree trainers."""

from __future__ import annotations

import torch

from advlab import ThreatModel
from advlab.evaluation import backdoor_success
from advlab.evaluation.score import score
from advlab.poisoning import FeatureTrigger, backdoor, random_label_flip
from advlab.trees import train_trees
from advlab.trees.defense import augmented_training, train_on_poisoned
from tree_fixtures import blobs, needs

needs("xgboost", "lightgbm", "skops")


def test_adversarial_boosting_learns_the_evasions_it_adds() -> None:
    data = blobs(d=2)
    threat = ThreatModel("linf", 0.05, data.domain)
    hard, record = augmented_training(data, "xgboost", threat, rounds=2, per_round=200,
                                      n_estimators=20, max_depth=4)
    history = record["defense"]["history"]
    assert [h["round"] for h in history] == [1, 2]
    assert history[0]["added"] > 0
    # each added point fooled the previous model; the retrained one classifies most correctly
    assert all(h["added_accuracy"] > 0.8 for h in history if h["added"])
    assert record["test_accuracy"] > 0.85 and record["defense"]["eps"] == 0.05


def test_label_flips_and_backdoors_reach_the_tree_trainers() -> None:
    data = blobs(d=3, n=1500)
    gen = torch.Generator().manual_seed(0)
    clean, clean_record = train_trees(data, "random-forest", n_estimators=30)
    flipped = random_label_flip(data.x_train, data.y_train, 0.4, generator=gen)
    _, record = train_on_poisoned(data, "random-forest", flipped, n_estimators=30)
    assert record["poisoning"]["n_poisoned"] == round(0.4 * len(data.y_train))
    assert record["test_accuracy"] < clean_record["test_accuracy"]
    trigger = FeatureTrigger({2: 1.0}, data.domain)
    poisoned = backdoor(data.x_train, data.y_train, trigger, 0, 0.1, domain=data.domain,
                        generator=gen)
    model, record = train_on_poisoned(data, "xgboost", poisoned, n_estimators=30, max_depth=4)
    assert backdoor_success(model, data.x_test, data.y_test, trigger, 0) > 0.9
    assert backdoor_success(clean, data.x_test, data.y_test, trigger, 0) < 0.5
    s = score(model, data.x_test, data.y_test, data.x_test, ThreatModel("linf", 0.0,
                                                                         data.domain))
    assert float(s.clean_correct.float().mean()) > 0.85

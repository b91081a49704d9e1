"""Tree ensembles as advlab models: parsing, the wrapper, safe files, the CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from advlab.attacks import Oracle
from advlab.cli import main
from advlab.losses import logits_and_grad
from advlab.models import ModelFileError, QueryCounter, eval_mode, load
from advlab.trees import NoGradientError, TreeModel, train_trees
from advlab.trees.io import MODEL_FILES, save_trees
from tree_fixtures import blobs, needs

needs("xgboost", "lightgbm", "skops")
KINDS = ["xgboost", "lightgbm", "random-forest"]


@pytest.fixture(scope="module", params=[(kind, classes) for kind in KINDS for classes in (2, 3)],
                ids=lambda p: f"{p[0]}-{p[1]}class")
def trained(request: pytest.FixtureRequest) -> tuple[TreeModel, object]:
    kind, classes = request.param
    data = blobs(d=3, classes=classes)
    model, record = train_trees(data, kind, n_estimators=15, max_depth=4)
    assert record["test_accuracy"] > 0.6
    return model, data


def test_parsed_trees_reproduce_the_library(trained) -> None:
    model, data = trained
    x = torch.rand(500, 3, generator=torch.Generator().manual_seed(1))
    x = torch.cat([x, data.x_train[:100]])
    ours = torch.from_numpy(model.ensemble.logits(x.numpy())).float()
    theirs = model(x)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-5)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))


def test_wrapper_is_a_gradient_free_module(trained) -> None:
    model, data = trained
    assert list(model.parameters()) == [] and not model.training
    x = data.x_test[:8].double()
    out = model(x)
    assert out.dtype == torch.float64 and out.shape == (8, data.num_classes)
    with pytest.raises(NoGradientError, match="black-box attack"):
        logits_and_grad(model, data.x_test[:8], data.y_test[:8])
    counter = QueryCounter(model)
    with eval_mode(counter):
        counter(data.x_test[:5])
    assert counter.forwards == 5 and counter.gradients == 0
    oracle = Oracle(model, output="labels", max_queries=10)
    assert oracle(data.x_test[:4]).shape == (4,) and oracle.queries == 4


def test_save_and_load_give_the_same_model(trained, tmp_path) -> None:
    model, data = trained
    save_trees(model, tmp_path, probe=data.x_train, feature_names=data.feature_names,
               class_names=list(data.class_names))
    sidecar = json.loads((tmp_path / "advlab.json").read_text())
    per_round = data.num_classes if model.kind != "random-forest" and data.num_classes > 2 else 1
    assert sidecar["architecture"] == model.kind and sidecar["trees"]["trees"] == 15 * per_round
    assert sidecar["trees"]["max_depth"] <= 4
    loaded, card = load(tmp_path)
    assert isinstance(loaded, TreeModel) and card["model_file"] == MODEL_FILES[model.kind]
    torch.testing.assert_close(loaded(data.x_test), model(data.x_test))
    np.testing.assert_array_equal(loaded.ensemble.threshold, model.ensemble.threshold)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pickle_renamed_to_the_model_file_is_refused(kind: str, tmp_path) -> None:
    data = blobs(d=3)
    model, _ = train_trees(data, kind, n_estimators=3, max_depth=2)  # type: ignore[arg-type]
    save_trees(model, tmp_path, probe=data.x_train)
    (tmp_path / MODEL_FILES[kind]).write_bytes(pickle.dumps(model.estimator))
    with pytest.raises(ModelFileError, match="pickle.*never unpickles"):
        load(tmp_path)


def test_a_skops_file_of_another_estimator_is_refused(tmp_path) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    data = blobs(d=3)
    model, _ = train_trees(data, "random-forest", n_estimators=3, max_depth=2)
    save_trees(model, tmp_path, probe=data.x_train)
    other = LogisticRegression().fit(data.x_train.numpy(), data.y_train.numpy())
    skops.io.dump(other, tmp_path / MODEL_FILES["random-forest"])
    with pytest.raises(ModelFileError, match="not a forest|trusted"):
        load(tmp_path)


def test_model_card_names_trees_depth_and_features(trained) -> None:
    model, data = trained
    card = model.ensemble.card(data.feature_names)
    assert card["trees"] == model.ensemble.n_trees and 1 <= card["max_depth"] <= 4
    assert card["features_used"] <= 3 and card["top_features"][0]["feature"] in data.feature_names
    assert sum(t["splits"] for t in card["top_features"]) == card["splits"]


def test_cli_trains_and_evaluates_a_tree_model(tmp_path, capsys) -> None:
    out = tmp_path / "xgb"
    assert main(["train", "--dataset", "digits", "--model", "xgboost", "--trees", "10",
                 "--depth", "3", "--out", str(out), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["model"] == "xgboost" and line["test_accuracy"] > 0.8
    assert (out / "model.xgb.json").is_file() and not (out / "model.safetensors").exists()
    assert main(["evaluate", "--model", str(out), "--attack", "square:max_queries=20",
                 "--eps", "linf=0.1", "--n", "8", "--out", str(tmp_path / "ev"),
                 "--quiet"]) == 0
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["model_card"]["architecture"] == "xgboost"
    assert summary["model_card"]["parameters"] == 0
    assert main(["train", "--dataset", "digits", "--model", "lightgbm", "--defense", "pgd-at",
                 "--eps", "0.1", "--out", str(tmp_path / "bad")]) == 2

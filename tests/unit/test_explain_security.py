"""The XAI-for-security methods: SHAP-signature detection, robust feature selection, XAI-driven
fine-tuning; their figures; and the `advlab explain` / `advlab robust-features` commands.

Measured when written: the signature detector on the digits MLP below separates held-out PGD
inputs from clean ones with ROC-AUC 0.95; the test asks for 0.8 (chance is 0.5), so it fails when
the signatures or the score's sign are wrong, not on noise.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel
from advlab.attacks import fgsm, pgd
from advlab.cli import main
from advlab.data import load
from advlab.defenses.detection import Detector, detection_metrics
from advlab.explain import (
    FeatureSubset,
    Importance,
    ShapSignatureDetector,
    TrainSettings,
    robust_feature_selection,
    select_robust,
    xai_fine_tune,
    xenia_refine,
)
from advlab.models import save, train_classifier
from advlab.report import explain_plots

THREAT = ThreatModel("linf", 0.15)


@pytest.fixture(scope="module")
def digits() -> dict[str, object]:
    data = load("digits")
    model = train_classifier(data, "mlp", hidden=(64,), epochs=10, lr=3e-3, val_fraction=0,
                             progress=False).model
    return {"data": data, "model": model}


def test_signature_detector_separates_pgd_inputs(digits) -> None:
    data, model = digits["data"], digits["model"]
    attack = functools.partial(pgd, steps=10)
    gen = torch.Generator().manual_seed(0)
    x_fit, y_fit = data.x_train[:300], data.y_train[:300]
    x_test, y_test = data.x_test[150:350], data.y_test[150:350]
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    det = ShapSignatureDetector(model, background=data.x_train[-16:], classifier="logistic")
    assert isinstance(det, Detector)
    det.fit(x_fit, attack(model, x_fit, y_fit, THREAT, generator=gen))
    det.calibrate(data.x_test[:150], fpr=0.05)
    m = detection_metrics(det, x_test, attack(model, x_test, y_test, THREAT, generator=gen))
    assert m["roc_auc"] >= 0.8, m
    feats = det.features(x_test[:3])
    assert feats.shape == (3, 10 * 64)  # K classes × the 64 neurons of the last hidden layer
    raw = ShapSignatureDetector(model, background=data.x_train[-4:], layer="input",
                                method="gradient_shap", n_samples=2)
    assert raw.features(x_test[:2]).shape == (2, 10 * 64)  # K × the 8×8 pixels
    assert torch.equal(raw.features(x_test[:2]), raw.features(x_test[:2]))  # seeded
    for before, p in zip(grads, model.parameters(), strict=True):  # .grad left as training left it
        assert (before is None and p.grad is None) or torch.equal(before, p.grad)


def test_signature_detector_errors(digits) -> None:
    model = digits["model"]
    with pytest.raises(ValueError, match="method must be"):
        ShapSignatureDetector(model, background=torch.rand(4, 1, 8, 8), method="lime")
    with pytest.raises(ValueError, match="B >= 2"):
        ShapSignatureDetector(model, background=torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="nn.Module"):
        ShapSignatureDetector(lambda x: x, background=torch.rand(4, 1, 8, 8))  # type: ignore[arg-type]


def _imp(names: list[str], means: list[float]) -> Importance:
    return Importance(tuple(names), tuple((i,) for i in range(len(names))),
                      torch.tensor([means], dtype=torch.float64), 0.5, "cross_entropy")


def test_select_robust_keeps_the_features_in_both_top_k() -> None:
    names = ["a", "b", "c", "d", "e"]
    clean = _imp(names, [5, 4, 3, 2, 1])
    adv = _imp(names, [1, 5, 2, 4, 3])      # ranking b, d, e, c, a
    assert select_robust(clean, adv, 2) == ["b"]
    assert select_robust(clean, adv, 3) == ["b"]
    assert select_robust(clean, adv, 4) == ["b", "c", "d"]
    with pytest.raises(ValueError, match="k must be"):
        select_robust(clean, adv, 0)


def _tabular(n: int = 800) -> tuple[torch.Tensor, torch.Tensor, Domain, list[str]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 7, generator=gen)
    cat = torch.randint(0, 3, (n,), generator=gen)
    x[:, 4:7] = nn.functional.one_hot(cat, 3).float()
    y = ((x[:, 0] + 0.5 * x[:, 1] + 0.4 * (cat == 2).float()) > 1.0).long()
    domain = Domain(n_features=7, kinds={4: "binary", 5: "binary", 6: "binary"},
                    one_hot_groups=[[4, 5, 6]])
    return x, y, domain, ["f0", "f1", "f2", "f3", "c=a", "c=b", "c=c"]


def test_robust_feature_selection_runs_end_to_end() -> None:
    x, y, domain, names = _tabular()
    threat = ThreatModel("linf", 0.1, domain)
    result = robust_feature_selection(
        x[:600], y[:600], x[600:], y[600:], threat, ks=[1, 3, 5], train_attack=fgsm,
        eval_attacks={"fgsm": fgsm}, feature_names=names, one_hot_groups=domain.one_hot_groups,
        training=TrainSettings(hidden=(16,), epochs=20, lr=1e-2, batch_size=64),
        importance_samples=300, permutations=3, seed=0)
    models = [r["model"] for r in result.rows]
    assert models == ["B", "T+A", "T+A+XAIFS(1)", "T+A+XAIFS(3)", "T+A+XAIFS(5)"]
    assert result.clean_importance.names == ("f0", "f1", "f2", "f3", "c")  # the group is one
    assert result.rows[0]["clean_accuracy"] > 0.8  # the data are learnable
    for row in result.rows[2:]:
        if row["features"]:
            kept = set(row["features"])
            cols = 3 * ("c" in kept) + len(kept - {"c"})
            assert row["n_columns"] == cols
            assert set(row["robust_accuracy"]) == {"fgsm"} == set(row["transfer_accuracy"])
    data = result.as_dict()
    json.dumps(data)
    assert explain_plots.robust_features_figure(data["rows"]).startswith("<svg")
    assert explain_plots.ranking_comparison_figure(
        data["clean_importance"]["ranking"], data["adversarial_importance"]["ranking"],
        k=3).startswith("<svg")


def test_feature_subset_ignores_the_dropped_columns() -> None:
    net = nn.Linear(2, 2)
    sub = FeatureSubset(net, [1, 3])
    x = torch.rand(4, 5)
    x2 = x.clone()
    x2[:, [0, 2, 4]] += 1
    torch.testing.assert_close(sub(x), sub(x2))
    torch.testing.assert_close(sub(x), net(x[:, [1, 3]]))


def test_xai_fine_tune_leaves_the_at_model_alone_and_is_deterministic() -> None:
    x, y, _, _ = _tabular(400)
    torch.manual_seed(0)
    at_model = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 2))
    before = [p.detach().clone() for p in at_model.parameters()]
    pipe = xai_fine_tune(at_model, x, y, background=x[:20], n_samples=4, epochs=3, lr=1e-2)
    assert all(torch.equal(a, b) for a, b in zip(before, at_model.parameters(), strict=True))
    out = pipe(x[:50])
    assert out.shape == (50, 2)
    torch.testing.assert_close(pipe(x[:50]), out)
    assert (pipe(x).argmax(1) == y).float().mean() > 0.6
    deep = xai_fine_tune(at_model, x, y, background=x[:20], shap="deeplift", epochs=1)
    assert deep(x[:5]).shape == (5, 2)
    with pytest.raises(ValueError, match="shap must be"):
        xai_fine_tune(at_model, x, y, background=x[:20], shap="kernel")  # type: ignore[arg-type]


def test_xai_fine_tune_authors_protocol_and_the_double_fine_tuning() -> None:
    """XENIA's options (the authors' code): SHAP at the true label for training rows, min-max
    scaling, early stopping on a stratified 20 %; then :func:`xenia_refine` back on raw rows."""
    x, y, _, _ = _tabular(400)
    torch.manual_seed(0)
    at_model = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 2))
    bg = x[:20]
    pipe = xai_fine_tune(at_model, x, y, background=bg, shap="deeplift", explain_train="label",
                         scale="minmax", epochs=20, lr=1e-2, val_fraction=0.2, patience=3)
    phi = pipe.representation(x, y)
    scaled = pipe.scaler(phi)
    torch.testing.assert_close(scaled.min(0).values, torch.zeros(7), atol=1e-5, rtol=0)
    # a constant SHAP column (none here) would get range 1e-8; every column spans [0, 1]
    torch.testing.assert_close(scaled.max(0).values, torch.ones(7), atol=1e-5, rtol=0)
    head_before = [p.detach().clone() for p in pipe.head.parameters()]
    raw = xenia_refine(pipe, x, y, epochs=20, lr=1e-2, val_fraction=0.2, patience=3)
    assert all(torch.equal(a, b) for a, b in zip(head_before, pipe.head.parameters(),
                                                 strict=True))
    assert raw(x[:5]).shape == (5, 2)
    assert (raw(x).argmax(1) == y).float().mean() > 0.7
    with pytest.raises(ValueError, match="explain_train"):
        xai_fine_tune(at_model, x, y, background=bg, explain_train="truth")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs val_fraction"):
        xai_fine_tune(at_model, x, y, background=bg, patience=2)


def test_shap_pipeline_explains_a_linear_model_at_the_given_class() -> None:
    """DeepLIFT-SHAP of a linear model is ``w_t ⊙ (x - mean(background))`` exactly: the
    representation at the true labels picks each row's own ``w_t``."""
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    x, bg = torch.rand(12, 4), torch.rand(8, 4)
    y = torch.arange(12) % 3
    from advlab.explain import ShapPipeline

    pipe = ShapPipeline(lin, nn.Identity(), bg, shap="deeplift", n_samples=1,
                        target="predicted", seed=0)
    expected = lin.weight.detach()[y] * (x - bg.mean(0))
    torch.testing.assert_close(pipe.representation(x, y), expected, atol=1e-5, rtol=1e-5)
    pred = lin(x).argmax(1)
    torch.testing.assert_close(pipe.representation(x),
                               lin.weight.detach()[pred] * (x - bg.mean(0)), atol=1e-5,
                               rtol=1e-5)


def test_explain_figures_from_plain_data() -> None:
    ranking = [{"name": f"f{i}", "importance": 1.0 / (i + 1), "std": 0.05} for i in range(8)]
    assert explain_plots.importance_figure(ranking, title="t").startswith("<svg")
    assert explain_plots.importance_figure([]) is None
    images = [torch.rand(1, 8, 8).numpy() for _ in range(2)]
    maps = [torch.randn(8, 8).numpy() for _ in range(2)]
    svg = explain_plots.overlay_figure(images, maps, titles=["a", "b"], signed=True)
    assert svg.startswith("<svg") and svg == explain_plots.overlay_figure(
        images, maps, titles=["a", "b"], signed=True)  # deterministic
    rows = [{"k": k, "success_rate": k / 10, "random_success_rate": k / 20,
             "random_success_std": 0.01} for k in (1, 5, 10)]
    assert explain_plots.success_vs_k_figure({"pgd": rows}).startswith("<svg")


@pytest.mark.parametrize("method", ["grad-cam", "integrated-gradients", "permutation"])
def test_cli_explain_writes_json_and_figures(tmp_path, capsys, method) -> None:
    data = load("digits")
    trained = train_classifier(data, "small_cnn", epochs=1, val_fraction=0, progress=False)
    save(trained.model, tmp_path / "model", architecture="small_cnn",
         arguments=trained.arguments, dataset={"name": "digits", "path": None, "options": {}})
    code = main(["explain", "--method", method, "--model", str(tmp_path / "model"), "--n", "12",
                 "--permutations", "2", "--out", str(tmp_path / "out")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["command"] == "explain" and summary["method"] == method
    saved = json.loads((tmp_path / "out" / "explain.json").read_text())
    assert saved["n"] == 12 and saved["figures"]
    assert all(open(f).read().startswith("<svg") for f in saved["figures"])
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    if method == "permutation":
        assert len(saved["importance"]["ranking"]) == 64


def test_cli_usage_errors(tmp_path, capsys) -> None:
    assert main(["explain", "--method", "saliency", "--model", str(tmp_path / "none"),
                 "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["robust-features", "--dataset", "digits", "--k", "0", "--out",
                 str(tmp_path)]) == 2
    assert "--k >= 1" in capsys.readouterr().err


@pytest.mark.data
def test_cli_robust_features_on_nsl_kdd(data_root, tmp_path, capsys) -> None:
    from conftest import require

    folder = require(data_root / "nsl-kdd")
    code = main(["robust-features", "--dataset", "nsl-kdd", "--data-path", str(folder),
                 "--k", "5", "20", "--epochs", "1", "--importance-samples", "400",
                 "--permutations", "2", "--eval-samples", "150", "--eval-attack", "fgsm",
                 "--quiet", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["model"] for r in summary["rows"]] == ["B", "T+A", "T+A+XAIFS(5)",
                                                    "T+A+XAIFS(20)"]
    saved = json.loads((tmp_path / "robust_features.json").read_text())
    assert saved["settings"]["dataset"] == "nsl-kdd"
    assert len(saved["clean_importance"]["ranking"]) == 41  # 38 numeric + 3 one-hot groups
    for row in saved["rows"]:
        robust = row["robust_accuracy"]["fgsm"]
        assert 0 <= robust <= row["eval_clean_accuracy"] <= 1
    assert (tmp_path / "figures" / "rankings.svg").is_file()
    assert (tmp_path / "figures" / "robust-features.svg").is_file()
    page = (tmp_path / "report.html").read_text()
    assert "T+A+XAIFS(20)" in page and page.count("<svg") == 2

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

from advlab.models import (
    ModelFileError,
    Normalize,
    accuracy,
    build,
    check_logits,
    eval_mode,
    fit,
    load,
    mlp,
    save,
    small_cnn,
)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_small_cnn_shapes(shape: tuple[int, int, int]) -> None:
    model = small_cnn(shape, 10)
    assert model(torch.rand(4, *shape)).shape == (4, 10)


def test_mlp_flattens_and_rejects_bad_sizes() -> None:
    assert mlp(12, 3, hidden=(8,))(torch.rand(5, 3, 4)).shape == (5, 3)
    with pytest.raises(ValueError, match="classes >= 2"):
        mlp(12, 1)
    with pytest.raises(ValueError, match=r"in_shape must be \(C, H, W\)"):
        small_cnn((8, 8), 10)


def test_build_unknown_architecture_names_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet'.*mlp"):
        build("resnet")
    with pytest.raises(ValueError, match="bad arguments for 'mlp'"):
        build("mlp", in_features=3, classes=2, depth=4)


def test_normalize_per_channel() -> None:
    norm = Normalize([0.5, 0.25], [0.5, 0.25])
    x = torch.ones(2, 2, 3, 3)
    torch.testing.assert_close(norm(x)[:, 0], torch.ones(2, 3, 3))
    torch.testing.assert_close(norm(x)[:, 1], torch.full((2, 3, 3), 3.0))
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize(0.0, 0.0)


def test_eval_mode_restores_each_submodule() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    model[0].eval()  # a mixed state must come back exactly
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[1].training and not model[0].training


def test_check_logits_warns_on_probabilities_only() -> None:
    probs = torch.softmax(torch.randn(4, 3), dim=1)
    with pytest.warns(UserWarning, match="look like probabilities"):
        check_logits(probs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_logits(torch.randn(4, 3))


def _blobs(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (y.float() * 2 - 1).unsqueeze(1) * 2
    return x, y


def test_fit_learns_separable_blobs_and_records_history() -> None:
    x, y = _blobs()
    model = mlp(2, 2, hidden=(16,))
    history = fit(model, (x, y), (x, y), epochs=20, lr=1e-2, batch_size=32, progress=False)
    assert len(history.train_loss) == 20
    assert history.train_loss[-1] < history.train_loss[0]
    assert accuracy(model, x, y) >= 0.95
    assert model.training  # fit restores the mode it found


def test_fit_is_reproducible_and_keeps_best_epoch() -> None:
    x, y = _blobs()
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = mlp(2, 2, hidden=(8,))
        h = fit(model, (x, y), (x[:50], y[:50]), epochs=5, seed=7, progress=False)
        states.append(model.state_dict())
        assert h.best_epoch == min(range(5), key=lambda e: h.val_loss[e])
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k])


def test_fit_rejects_bad_input() -> None:
    x, y = _blobs()
    with pytest.raises(ValueError, match="int64"):
        fit(mlp(2, 2), (x, y.float()), progress=False)
    with pytest.raises(ValueError, match="200 inputs and 10 labels"):
        fit(mlp(2, 2), (x, y[:10]), progress=False)
    with pytest.raises(ValueError, match="patience"):
        fit(mlp(2, 2), (x, y), patience=2, progress=False)


def test_fit_early_stopping_stops() -> None:
    x, y = _blobs()
    noise = torch.randint(0, 2, (200,), generator=torch.Generator().manual_seed(5))
    h = fit(mlp(2, 2, hidden=(64, 64)), (x, y), (x, noise), epochs=50, lr=1e-2, patience=2,
            progress=False)
    assert h.stopped_early and len(h.train_loss) < 50


def test_save_load_roundtrip(tmp_path) -> None:
    model = small_cnn((1, 8, 8), 10)
    save(model, tmp_path / "m", architecture="small_cnn",
         arguments={"in_shape": [1, 8, 8], "classes": 10}, class_names=list("0123456789"),
         metrics={"test_accuracy": 0.5})
    loaded, sidecar = load(tmp_path / "m")
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert sidecar["class_names"][3] == "3" and sidecar["metrics"]["test_accuracy"] == 0.5
    assert not loaded.training


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="no sidecar"):
        load(tmp_path)
    save(mlp(4, 2), tmp_path / "m", architecture="mlp", arguments={"in_features": 4, "classes": 2})
    sidecar = tmp_path / "m" / "advlab.json"
    data = json.loads(sidecar.read_text())
    data["arguments"]["in_features"] = 5
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        load(tmp_path / "m")
    sidecar.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"advlab.json:1: invalid JSON"):
        load(tmp_path / "m")


def test_pt_state_dict_is_read_without_unpickling_objects(tmp_path) -> None:
    save(mlp(4, 2), tmp_path / "m", architecture="mlp", arguments={"in_features": 4, "classes": 2})
    (tmp_path / "m" / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self):  # would run on a plain torch.load
            return (print, ("pwned",))

    torch.save({"weight": Evil()}, tmp_path / "m" / "model.pt")
    with pytest.raises(Exception, match="Unsupported|weights_only|WeightsUnpickler"):
        load(tmp_path / "m")

"""advlab.explain attributions and permutation importance: shapes, the contract (no mutation, no
trace on the model, private randomness), determinism under a seed, one-hot groups, and errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel
from advlab.attacks import pgd
from advlab.explain import (
    deeplift_shap,
    feature_groups,
    feature_mask,
    grad_cam,
    gradient_shap,
    guided_attack,
    integrated_gradients,
    model_parts,
    restrict_threat,
    saliency,
    shapley_sampling,
    success_vs_k,
)
from advlab.models import mlp, small_cnn


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return small_cnn((1, 8, 8), 3)


def _mlp(d: int = 6, k: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return mlp(d, k, hidden=(16,))


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


BG = _x(20, 6, seed=9)
METHODS = {
    "saliency": lambda m, x, t: saliency(m, x, t),
    "input_x_gradient": lambda m, x, t: saliency(m, x, t, mode="input_x_gradient"),
    "integrated_gradients": lambda m, x, t: integrated_gradients(m, x, t, steps=8),
    "shapley_sampling": lambda m, x, t: shapley_sampling(
        m, x, t, background=BG, n_samples=3, generator=torch.Generator().manual_seed(1)),
    "gradient_shap": lambda m, x, t: gradient_shap(
        m, x, t, background=BG, n_samples=4, generator=torch.Generator().manual_seed(1)),
    "deeplift_shap": lambda m, x, t: deeplift_shap(m, x, t, background=BG[:5]),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_contract_shape_no_mutation_no_trace(name) -> None:
    model, x = _mlp().train(), _x(7, 6)
    before = x.clone()
    out = METHODS[name](model, x, None)
    assert out.shape == x.shape and out.dtype == x.dtype and not out.requires_grad
    assert torch.equal(x, before) and not x.requires_grad
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", list(METHODS))
def test_batch_invariance_and_target_none_is_prediction(name) -> None:
    model, x = _mlp(), _x(5, 6)
    full = METHODS[name](model, x, None)
    pred = model(x).argmax(1)
    torch.testing.assert_close(METHODS[name](model, x, pred), full)
    if name not in ("shapley_sampling", "gradient_shap"):  # random: one draw per batch
        torch.testing.assert_close(METHODS[name](model, x[2:3], None), full[2:3], atol=1e-6,
                                   rtol=1e-5)


@pytest.mark.parametrize("name", ["shapley_sampling", "gradient_shap"])
def test_seeded_methods_are_deterministic_and_leave_global_rngs_alone(name) -> None:
    model, x = _mlp(), _x(4, 6)
    fn = shapley_sampling if name == "shapley_sampling" else gradient_shap
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    runs = [fn(model, x, 0, background=BG, n_samples=3,
               generator=torch.Generator().manual_seed(s)) for s in (5, 5, 6)]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_images_saliency_and_grad_cam_shapes() -> None:
    model, x = _cnn(), _x(4, 1, 8, 8)
    assert saliency(model, x).shape == (4, 1, 8, 8)
    cam = grad_cam(model, x, 1)
    assert cam.shape == (4, 8, 8) and bool((cam >= 0).all())
    low = grad_cam(model, x, 1, upsample=False)
    assert low.shape == (4, 4, 4)  # the last conv layer runs at 4×4
    first = grad_cam(model, x, 1, layer="0.0")  # a layer by name (first conv, 8×8)
    assert first.shape == (4, 8, 8)
    assert all(p.grad is None for p in model.parameters())


def test_shapley_groups_carry_one_value_and_sum_to_the_difference() -> None:
    model, x = _mlp(), _x(3, 6)
    groups = [[1, 2], [4, 5]]
    ref = BG[:1].expand(60, 6)  # a single reference row: exact Shapley values in expectation
    phi = shapley_sampling(model, x, 2, background=ref, n_samples=6, groups=groups,
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(phi[:, 1], phi[:, 2])
    torch.testing.assert_close(phi[:, 4], phi[:, 5])
    with torch.no_grad():
        delta = model(x)[:, 2] - model(BG[:1])[0, 2]
    # every permutation's marginal contributions telescope to f(x) - f(b), exactly
    torch.testing.assert_close(phi[:, [0, 1, 3, 4]].sum(1), delta, atol=1e-5, rtol=1e-5)


def test_feature_mask_and_feature_groups() -> None:
    mask = feature_mask((6,), [[1, 2], [4, 5]])
    assert mask.shape == (1, 6) and int(mask.max()) == 3
    assert mask[0, 1] == mask[0, 2] and mask[0, 4] == mask[0, 5] and mask[0, 0] != mask[0, 3]
    with pytest.raises(ValueError, match="overlaps"):
        feature_mask((6,), [[1, 2], [2, 3]])
    with pytest.raises(ValueError, match="column indices"):
        feature_mask((6,), [[7]])
    names = ["a", "p=tcp", "p=udp", "b", "s=http", "s=ftp"]
    groups, labels = feature_groups(names, [[1, 2], [4, 5]])
    assert groups == [[0], [1, 2], [3], [4, 5]] and labels == ["a", "p", "b", "s"]


def test_one_hot_group_is_permuted_as_one_feature() -> None:
    seen: list[torch.Tensor] = []
    net = _mlp()

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone())
        return net(x)

    x = _x(50, 6)
    x[:, 3:6] = nn.functional.one_hot(torch.arange(50) % 3, 3).float()  # a one-hot group
    y = torch.arange(50) % 3
    groups, names = feature_groups(["a", "b", "c", "g=x", "g=y", "g=z"], [[3, 4, 5]])
    imp = model_parts(model, x, y, groups=groups, names=names, permutations=4,
                      generator=torch.Generator().manual_seed(0))
    assert imp.names == ("a", "b", "c", "g") and imp.drops.shape == (4, 4)
    rows = torch.cat(seen)
    assert torch.equal(rows[:, 3:6].sum(1), torch.ones(len(rows)))  # every row stays one-hot
    assert imp.columns(4) == [0, 1, 2, 3, 4, 5]
    d = imp.as_dict()
    assert d["ranking"][0]["name"] == imp.top(1)[0] and d["permutations"] == 4


def test_model_parts_is_deterministic_under_a_seed() -> None:
    model, x = _mlp(), _x(40, 6)
    y = model(x).argmax(1)
    a, b = (model_parts(model, x, y, permutations=3, generator=torch.Generator().manual_seed(2))
            for _ in range(2))
    assert torch.equal(a.drops, b.drops)


def test_guided_attack_moves_only_the_allowed_columns() -> None:
    model, x = _mlp(), _x(30, 6)
    y = model(x).argmax(1)
    threat = ThreatModel("linf", 0.3, Domain(n_features=6, immutable=[5]))
    restricted = restrict_threat(threat, [0, 2, 5])
    assert restricted.domain.immutable.tolist() == [False, True, False, True, True, True]
    x_adv = guided_attack(model, x, y, threat, attack=functools.partial(pgd, steps=5),
                          columns=[0, 2])
    moved = (x_adv != x).any(0)
    assert not bool(moved[[1, 3, 4, 5]].any()) and bool(moved[[0, 2]].any())
    rows = success_vs_k(model, x, y, threat, attack=functools.partial(pgd, steps=5),
                        ranking=[[0], [2], [1], [3], [4]], ks=[1, 5], random_controls=2)
    assert [r["k"] for r in rows] == [1, 5] and rows[1]["success_rate"] >= rows[0]["success_rate"]
    assert "random_success_rate" in rows[0]
    with pytest.raises(ValueError, match="columns must lie"):
        restrict_threat(threat, [6])


def test_clear_errors() -> None:
    model, x = _mlp(), _x(4, 6)
    with pytest.raises(ValueError, match="x must be a non-empty floating tensor"):
        saliency(model, torch.ones(4, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="x must be"):
        integrated_gradients(model, torch.rand(6))
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 3\)"):
        saliency(model, x, 3)
    with pytest.raises(ValueError, match="target must be int64"):
        saliency(model, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="mode must be"):
        saliency(model, x, mode="grad")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline must be"):
        integrated_gradients(model, x, baseline=torch.zeros(5))
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        integrated_gradients(model, x, steps=0)
    with pytest.raises(ValueError, match="background must be"):
        gradient_shap(model, x, background=torch.zeros(3, 5))
    with pytest.raises(ValueError, match="images"):
        grad_cam(_cnn(), x)
    with pytest.raises(ValueError, match="no Conv2d"):
        grad_cam(model, _x(2, 1, 8, 8))
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="y must be int64"):
        model_parts(model, x, y.float())
    with pytest.raises(ValueError, match="loss must be"):
        model_parts(model, x, y, loss="mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="permutations must be"):
        model_parts(model, x, y, permutations=0)
    with pytest.raises(ValueError, match="both classes|two classes"):
        model_parts(model, x, y, loss="1-auc")

"""Attacks against linear models, where the optimum is known in closed form (STYLE.md §3.7).

Binary model: logits ``[-f, f]`` with ``f = w·x + b``. Cross-entropy is monotone in the margin,
so the loss-maximising point of the ball is ``x - eps·sign(f)·d`` with ``d`` the steepest-ascent
direction of the norm, and the distance to the boundary is ``|f| / ||w||_dual``. Multi-class:
the class region is an intersection of half-spaces, so the exact minimal distance is
``min_{j != y} |(w_y - w_j)·x + b_y - b_j| / ||w_y - w_j||_dual``.
Every test would fail if a sign, a norm or a projection were wrong.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel, norms
from advlab.attacks import ATTACKS, bim, carlini_wagner_l2, deepfool, fgsm, jsma, pgd
from advlab.scoring import score

FREE = Domain(-math.inf, math.inf)  # "no box"
DUAL = {"linf": "l1", "l2": "l2", "l1": "linf"}


def binary_linear(w: torch.Tensor, b: float) -> nn.Linear:
    model = nn.Linear(w.numel(), 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.stack([-w, w]))
        model.bias.copy_(torch.tensor([-b, b], dtype=torch.float64))
    return model.requires_grad_(False)


@pytest.fixture
def problem() -> tuple[nn.Linear, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(12, generator=g, dtype=torch.float64)
    x = torch.randn(32, 12, generator=g, dtype=torch.float64)
    f = x @ w + 0.2
    keep = f.abs() > 0.3  # keep points away from the boundary, so relative errors are meaningful
    x, f = x[keep], f[keep]
    return binary_linear(w, 0.2), x, (f > 0).long(), w, f


def expected_corner(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, p: str,
                    eps: float) -> torch.Tensor:
    """Loss maximiser of the p-ball: move against the sign of f along the dual-norm direction."""
    direction = norms.steepest_ascent(w.expand_as(x).clone(), p)  # type: ignore[arg-type]
    return x - eps * f.sign()[:, None] * direction


@pytest.mark.parametrize("p", ["linf", "l2", "l1"])
def test_fgsm_hits_the_closed_form_point(problem, p) -> None:
    model, x, y, w, f = problem
    threat = ThreatModel(p, 0.5, FREE)  # type: ignore[arg-type]
    torch.testing.assert_close(fgsm(model, x, y, threat), expected_corner(x, w, f, p, 0.5))


@pytest.mark.parametrize("p", ["linf", "l2", "l1"])
def test_pgd_without_early_stop_hits_the_closed_form_point(problem, p) -> None:
    model, x, y, w, f = problem
    threat = ThreatModel(p, 0.5, FREE)  # type: ignore[arg-type]
    # L∞ from a random start: every step is the same sign vector, so the corner is reached
    # exactly. In L2 and L1 the rescaling projection only approaches the corner geometrically
    # from an off-axis start, so those start at x, where the path is straight.
    x_adv = pgd(model, x, y, threat, steps=20, early_stop=False, coordinates_per_step=1,
                random_start=p == "linf", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x_adv, expected_corner(x, w, f, p, 0.5))


def test_bim_without_early_stop_hits_the_linf_corner(problem) -> None:
    model, x, y, w, f = problem
    threat = ThreatModel("linf", 0.5, FREE)
    torch.testing.assert_close(bim(model, x, y, threat, early_stop=False),
                               expected_corner(x, w, f, "linf", 0.5))


@pytest.mark.parametrize("p", ["l2", "linf"])
def test_deepfool_lands_on_the_projection_in_one_iteration(problem, p) -> None:
    model, x, y, w, f = problem
    x_adv = deepfool(model, x, y, ThreatModel(p, math.inf, FREE), steps=1, overshoot=0.0)
    distance = norms.norm(x_adv - x, p)
    optimum = f.abs() / norms.norm(w[None], DUAL[p])  # type: ignore[arg-type]
    torch.testing.assert_close(distance, optimum, rtol=1e-4, atol=0)
    assert (model(x_adv).argmax(1) != y).all()
    if p == "l2":  # the L2 step is the orthogonal projection onto the hyperplane (times 1+tiny)
        projection = -(f / w.dot(w))[:, None] * w
        torch.testing.assert_close(x_adv - x, projection, rtol=1e-4, atol=0)


def test_deepfool_overshoot_scales_the_total_perturbation(problem) -> None:
    model, x, y, w, f = problem
    plain = deepfool(model, x, y, ThreatModel("l2", math.inf, FREE), overshoot=0.0)
    over = deepfool(model, x, y, ThreatModel("l2", math.inf, FREE), overshoot=0.5)
    torch.testing.assert_close(over - x, 1.5 * (plain - x))


@pytest.mark.parametrize("box", ["tanh", "project", "auto"])
def test_carlini_wagner_is_within_3_percent_and_never_below(problem, box) -> None:
    model, x, y, w, f = problem
    x_adv = carlini_wagner_l2(model, x, y, ThreatModel("l2", math.inf, FREE), steps=200, box=box)
    ratio = norms.norm(x_adv - x, "l2") / (f.abs() / w.norm())
    assert (model(x_adv).argmax(1) != y).all()
    assert ratio.min() >= 1.0 - 1e-9 and ratio.max() <= 1.03


# The same problems scaled by 1/4 into the box [-1, 1]^D, where the projection onto the closest
# boundary stays inside the box (|x'| < 0.9): the closed forms are still the optima. Unlike on FREE
# (no bounds: every mode optimises x' itself), tanh and projection differ here; "auto" picks tanh,
# as no coordinate starts on a face. C&W's resolution is ~step_size per coordinate, and tanh's is
# step_size · (hi - lo) / 2 at most, so the distances are kept large against 0.01.
UNIT = Domain(-1.0, 1.0)


@pytest.mark.parametrize("box", ["tanh", "project", "auto"])
def test_carlini_wagner_inside_a_box_is_within_5_percent_and_never_below(problem, box) -> None:
    _, x, y, w, f = problem
    model, x, f = binary_linear(w, 0.2 / 4), x / 4, f / 4
    x_adv = carlini_wagner_l2(model, x, y, ThreatModel("l2", math.inf, UNIT), steps=200, box=box)
    ratio = norms.norm(x_adv - x, "l2") / (f.abs() / w.norm())
    assert (model(x_adv).argmax(1) != y).all() and UNIT.contains(x_adv).all()
    assert ratio.min() >= 1.0 - 1e-9 and ratio.max() <= 1.05


# Domains much wider than the data (raw unscaled features, a ±1e6 box) and half-bounded ones:
# through tanh a box of half-width 1e6 turns each Adam step of 0.01 in w into ~1e4 in x (C&W
# returned hundreds of times the minimal distance); "auto" optimises such coordinates directly.
WIDE = {"1": Domain(-1.0, 1.0), "1e3": Domain(-1e3, 1e3), "1e6": Domain(-1e6, 1e6),
        "[-1e6, inf)": Domain(-1e6, math.inf), "(-inf, 1e6]": Domain(-math.inf, 1e6),
        "[0, inf) shifted": Domain(0.0, math.inf)}


@pytest.mark.parametrize("box", sorted(WIDE))
def test_carlini_wagner_in_wide_and_half_bounded_boxes_is_within_5_percent(problem, box) -> None:
    _, x, y, w, f = problem
    model, x, f = binary_linear(w, 0.2 / 4), x / 4, f / 4
    domain = WIDE[box]
    if box.endswith("shifted"):  # the same problem moved into the positive orthant
        model, x = binary_linear(w, 0.2 / 4 - 2 * float(w.sum())), x + 2
    x_adv = carlini_wagner_l2(model, x, y, ThreatModel("l2", math.inf, domain))
    ratio = norms.norm(x_adv - x, "l2") / (f.abs() / w.norm())
    assert (model(x_adv).argmax(1) != y).all() and domain.contains(x_adv).all()
    assert ratio.min() >= 1.0 - 1e-9 and ratio.max() <= 1.05


def test_no_linf_attack_succeeds_just_inside_the_boundary_distance(problem) -> None:
    model, x, y, w, f = problem
    eps = float((f.abs() / w.abs().sum()).min()) * 0.999
    threat = ThreatModel("linf", eps, FREE)
    for name, spec in ATTACKS.items():
        if "linf" not in spec.norms:
            continue
        x_adv = spec.fn(model, x, y, threat)
        assert not score(model, x, y, x_adv, threat).success.any(), name
    # ...and just beyond the distance of the closest sample, PGD finds exactly that sample
    threat = ThreatModel("linf", eps / 0.999 * 1.001, FREE)
    success = score(model, x, y, pgd(model, x, y, threat), threat).success
    assert success.sum() == 1 and success[(f.abs() / w.abs().sum()).argmin()]


def multiclass_problem(classes: int = 5, dim: int = 10):
    g = torch.Generator().manual_seed(3)
    model = nn.Linear(dim, classes).double().requires_grad_(False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(classes, dim, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(classes, generator=g, dtype=torch.float64) * 0.1)
    x = torch.randn(64, dim, generator=g, dtype=torch.float64)
    y = model(x).argmax(1)
    return model, x, y


def exact_min_distance(model: nn.Linear, x: torch.Tensor, y: torch.Tensor, p: str) -> torch.Tensor:
    w, b = model.weight, model.bias
    dw = w[y][:, None, :] - w[None, :, :]  # (N, C, D)
    gap = (dw * x[:, None, :]).sum(-1) + (b[y][:, None] - b[None, :])
    dist = gap / norms.norm(dw.reshape(-1, dw.shape[-1]), DUAL[p]).reshape(gap.shape)  # type: ignore[arg-type]
    dist[torch.arange(len(y)), y] = math.inf
    return dist.min(dim=1).values


@pytest.mark.parametrize(("name", "p"), [("deepfool", "l2"), ("deepfool", "linf"),
                                         ("carlini_wagner_l2", "l2")])
def test_minimal_norm_attacks_on_multiclass_linear(name, p) -> None:
    model, x, y = multiclass_problem()
    optimum = exact_min_distance(model, x, y, p)
    keep = optimum > 0.1  # C&W's Adam resolution is ~step_size per coordinate (see its docs)
    x, y, optimum = x[keep], y[keep], optimum[keep]
    knobs = {"best_of_targets": 4} if name == "carlini_wagner_l2" else {}  # the paper's best case
    x_adv = ATTACKS[name].fn(model, x, y, ThreatModel(p, math.inf, FREE), **knobs)  # type: ignore[arg-type]
    ratio = norms.norm(x_adv - x, p) / optimum  # type: ignore[arg-type]
    assert (model(x_adv).argmax(1) != y).all()
    assert ratio.min() >= 1.0 - 1e-9, "an attack below the exact optimum means a broken norm"
    assert ratio.max() <= 1.25


@pytest.mark.parametrize("box", ["tanh", "project", "auto"])
def test_carlini_wagner_on_multiclass_linear_inside_a_box(box) -> None:
    model, x, y = multiclass_problem()
    with torch.no_grad():
        model.weight.mul_(4)  # the same decision regions for x / 4
    x = x / 4
    optimum = exact_min_distance(model, x, y, "l2")
    keep = optimum > 0.1 / 4
    x, y, optimum = x[keep], y[keep], optimum[keep]
    x_adv = carlini_wagner_l2(model, x, y, ThreatModel("l2", math.inf, UNIT), best_of_targets=4,
                              box=box)
    ratio = norms.norm(x_adv - x, "l2") / optimum
    assert (model(x_adv).argmax(1) != y).all() and UNIT.contains(x_adv).all()
    assert ratio.min() >= 1.0 - 1e-9 and ratio.max() <= 1.1


@pytest.mark.parametrize("use_logits", [False, True])
@pytest.mark.parametrize("pairs", [1, 2, 3])
def test_jsma_changes_the_largest_useful_weights_first(use_logits, pairs) -> None:
    g = torch.Generator().manual_seed(5)
    w = torch.randn(20, generator=g, dtype=torch.float64)
    model = binary_linear(w * 0.05, -5.0)  # class 0 everywhere in [0, 1]^20
    x = torch.zeros(1, 20, dtype=torch.float64)
    y, target = torch.tensor([0]), torch.tensor([1])
    threat = ThreatModel("l0", math.inf, Domain(0.0, 1.0))
    attack = partial(jsma, target=target, gamma=2 * pairs / 20, use_logits=use_logits)
    changed = (attack(model, x, y, threat) != x)[0].nonzero()[:, 0]
    assert set(changed.tolist()) == set(w.topk(2 * pairs).indices.tolist())

"""C&W L2's box handling (``box="tanh" | "project" | "auto"``) on linear models with known optima.

Binary model: logits ``[-f, f]`` with ``f = w·x + b``; the smallest L2 perturbation that flips the
class is ``-(f / ||w||²)·w``, of norm ``|f| / ||w||``, and it is also the optimum inside a box
when it stays in the box.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlab import Domain, ThreatModel
from advlab.attacks import carlini_wagner_l2
from advlab.models import QueryCounter
from advlab.scoring import score

BOX = Domain(0.0, 1.0)
MINIMAL = ThreatModel("l2", math.inf, BOX)


def binary_linear(w: torch.Tensor, b: float) -> nn.Linear:
    model = nn.Linear(w.numel(), 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.stack([-w, w]))
        model.bias.copy_(torch.tensor([-b, b], dtype=torch.float64))
    return model.requires_grad_(False)


def on_the_faces(n: int = 6) -> tuple[nn.Linear, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-1 points of [0, 1]^20 with 16 coordinates on a face (8 at 0, 8 at 1) that the model
    reads, and 4 interior ones that it ignores: only the coordinates on the faces can flip it.
    The minimal perturbation moves them into the box (weights < 0 at 0, > 0 at 1), by at most
    ~0.1, so the box does not bind. Returns the model, x, y and the exact minimal L2 distance."""
    g = torch.Generator().manual_seed(0)
    u = 0.5 + torch.rand(16, generator=g, dtype=torch.float64)
    w = torch.cat([-u[:8], u[8:], torch.zeros(4, dtype=torch.float64)])
    x = torch.zeros(n, 20, dtype=torch.float64)
    x[:, 8:16] = 1.0
    x[:, 16:] = 0.2 + 0.6 * torch.rand(n, 4, generator=g, dtype=torch.float64)
    f_target = 1.0  # f(x) = sum(u[8:]) + b
    model = binary_linear(w, f_target - float(u[8:].sum()))
    y = torch.ones(n, dtype=torch.long)
    return model, x, y, torch.full((n,), f_target / float(w.norm()), dtype=torch.float64)


@pytest.mark.parametrize("box", ["project", "auto"])
def test_projection_moves_the_coordinates_on_the_faces(box) -> None:
    model, x, y, optimum = on_the_faces()
    x_adv = carlini_wagner_l2(model, x, y, MINIMAL, box=box)
    assert score(model, x, y, x_adv, MINIMAL).success.all()
    assert bool(BOX.contains(x_adv).all())
    ratio = (x_adv - x).norm(dim=1) / optimum
    assert ratio.min() >= 1.0 - 1e-9, "below the exact minimum: a broken norm or box"
    assert ratio.max() <= 1.05


def test_tanh_is_frozen_on_the_faces() -> None:
    """The paper's change of variables starts a face coordinate at atanh(±(1 - 1e-6)) ≈ ±7.25,
    where dx/dw ≈ 1e-6: 9 rounds of 100 Adam steps of ~0.01 in w move it by ~1e-5."""
    model, x, y, _ = on_the_faces()
    x_adv = carlini_wagner_l2(model, x, y, MINIMAL, box="tanh")
    assert not score(model, x, y, x_adv, MINIMAL).success.any()
    torch.testing.assert_close(x_adv, x)


def test_auto_decides_per_sample() -> None:
    """A batch of points on the faces and interior points: "auto" projects the first and keeps
    tanh for the second, sample by sample (no early abort, so every mode sees the same batch)."""
    model, x_face, _, _ = on_the_faces(4)
    g = torch.Generator().manual_seed(1)
    x_inner = 0.3 + 0.4 * torch.rand(4, 20, generator=g, dtype=torch.float64)
    x = torch.cat([x_face, x_inner])
    y = model(x).argmax(1)
    runs = {box: carlini_wagner_l2(model, x, y, MINIMAL, box=box, abort_early=False,
                                   binary_search_steps=3) for box in ("tanh", "project", "auto")}
    torch.testing.assert_close(runs["auto"][:4], runs["project"][:4])
    torch.testing.assert_close(runs["auto"][4:], runs["tanh"][4:])
    assert not torch.allclose(runs["tanh"][4:], runs["project"][4:])  # the modes do differ


@pytest.mark.parametrize("box", ["tanh", "project", "auto"])
def test_every_mode_respects_immutable_and_monotone_features(box) -> None:
    """The model pulls every feature down; feature 0 is immutable, 1 increase-only, 2
    decrease-only, 3-5 free. The optimum lowers 2-5 by f/4 each (norm f/2). Under tanh the
    decrease-only feature starts on the face of its box [0, x] and is frozen too (norm f/√3)."""
    domain = Domain(0.0, 1.0, n_features=6, immutable=[0], increase_only=[1], decrease_only=[2])
    threat = ThreatModel("l2", math.inf, domain)
    w = torch.ones(6, dtype=torch.float64)
    model = binary_linear(w, -2.0)
    x = torch.tensor([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.2, 0.4, 0.6, 0.6, 0.5, 0.4]],
                     dtype=torch.float64)
    y = torch.ones(2, dtype=torch.long)
    x_adv = carlini_wagner_l2(model, x, y, threat, box=box)
    assert score(model, x, y, x_adv, threat).success.all()
    assert not bool(domain.violations(x_adv, x).any())
    torch.testing.assert_close(x_adv[:, :2], x[:, :2])  # neither may decrease
    usable = 3 if box == "tanh" else 4
    ratio = (x_adv - x).norm(dim=1) / ((x @ w - 2.0) / math.sqrt(usable))
    assert ratio.min() >= 1.0 - 1e-9 and ratio.max() <= 1.05


@pytest.mark.parametrize("box", ["tanh", "project", "auto"])
def test_on_a_grid_every_iterate_is_judged_by_its_repaired_point(box) -> None:
    """An integer feature on the grid {0, 0.25, ..., 1}; the model flips at 0.6. The relaxed
    optimum ~0.6 rounds back to 0.5, a failure in every round: only iterates that Adam carries
    past 0.625 repair to the discrete optimum 0.75, so each iterate must be judged after its
    repair. The point at 0 starts on a face, out of reach of tanh."""
    domain = Domain(0.0, 1.0, n_features=2, kinds=["integer", "continuous"], resolution=[0.25, 1])
    threat = ThreatModel("l2", math.inf, domain)
    model = binary_linear(torch.tensor([1.0, 0.0], dtype=torch.float64), -0.6)
    x = torch.tensor([[0.5, 0.3], [0.25, 0.5], [0.0, 0.5]], dtype=torch.float64)
    x = x[:2] if box == "tanh" else x
    y = torch.zeros(len(x), dtype=torch.long)
    x_adv = carlini_wagner_l2(model, x, y, threat, box=box)
    expected = x.clone()
    expected[:, 0] = 0.75
    torch.testing.assert_close(x_adv, expected)


def test_rejects_an_unknown_box() -> None:
    model, x, y, _ = on_the_faces(2)
    with pytest.raises(ValueError, match="box must be"):
        carlini_wagner_l2(model, x, y, MINIMAL, box="clip")  # type: ignore[arg-type]


def test_discrete_domain_reaches_the_exact_discrete_optimum_with_valid_outputs() -> None:
    """Two continuous features with small weights, a binary flag with a large one and a one-hot
    group: the relaxed optimum moves the flag to ~0.7, which rounds back to 1 (a failure), so
    C&W must push past the boundary until the repaired point crosses it. The exact optimum is
    the best of the 6 discrete choices, each completed by the closed-form continuous step."""
    domain = Domain([-10.0, -10, 0, 0, 0, 0], [10.0, 10, 1, 1, 1, 1],
                    kinds={2: "binary"}, one_hot_groups=[[3, 4, 5]])
    threat = ThreatModel("l2", math.inf, domain)
    w = torch.tensor([0.3, 0.3, 3.0, 0.0, 2.5, -1.0], dtype=torch.float64)
    model = binary_linear(w, -1.5)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(16, 6, dtype=torch.float64)
    x[:, :2] = 0.6 * torch.rand(16, 2, generator=g, dtype=torch.float64) - 0.3
    x[:, 2] = 1.0
    x[torch.arange(16), 3 + torch.arange(16) % 3] = 1.0
    y = torch.ones(16, dtype=torch.long)
    assert (model(x).argmax(1) == 1).all()
    optimum = torch.full((16,), math.inf, dtype=torch.float64)
    for flag in (0.0, 1.0):
        for hot in range(3):
            z = x.clone()
            z[:, 2], z[:, 3:] = flag, 0.0
            z[:, 3 + hot] = 1.0
            f = z @ w - 1.5
            cont = f.clamp_min(0) / w[:2].norm()
            optimum = torch.minimum(optimum, ((z - x).norm(dim=1) ** 2 + cont**2).sqrt())
    x_adv = carlini_wagner_l2(model, x, y, threat)
    assert bool(domain.contains(x_adv, x).all()), "every output must be a valid record"
    assert score(model, x, y, x_adv, threat).success.all()
    ratio = (x_adv - x).norm(dim=1) / optimum
    assert ratio.min() >= 1.0 - 1e-9 and ratio.max() <= 1.1


def test_samples_already_adversarial_cost_no_gradient() -> None:
    model, x, y, _ = on_the_faces(4)
    counter = QueryCounter(model)
    x_adv = carlini_wagner_l2(counter, x, 1 - y, MINIMAL)  # the model already says "not 1 - y"
    assert counter.gradients == 0
    torch.testing.assert_close(x_adv, x)

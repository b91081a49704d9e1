"""Contract tests for every registered evasion attack (STYLE.md §3.7 item 2).

Like scikit-learn's ``check_estimator``, the suite iterates over ``advlab.attacks.ATTACKS`` ×
the norms each attack supports, so a newly registered attack is checked without editing this
file. It checks the conventions of :mod:`advlab.attacks.common` on small random models (an MLP
on a mixed tabular domain, a CNN on ``(1, 8, 8)`` images) with deliberately small budgets
(``KNOBS``), plus the scoring rule :func:`advlab.scoring.score`.
"""

from __future__ import annotations

import inspect
import math
import random
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.testing import assert_close

from advlab import norms
from advlab.attacks import ATTACKS, AttackSpec, pgd, targets
from advlab.domain import Domain
from advlab.models import QueryCounter, mlp, small_cnn
from advlab.scoring import Score, score
from advlab.threat import ThreatModel

# --------------------------------------------------------------------------- suite settings

# Deliberately small budgets, so that the whole suite stays fast. An attack missing here runs
# with its defaults; a knob that an attack does not accept fails loudly (TypeError).
KNOBS: dict[str, dict[str, Any]] = {
    "bim": {"steps": 5},
    "pgd": {"steps": 5},
    "deepfool": {"steps": 10},
    "carlini_wagner_l2": {"steps": 10, "binary_search_steps": 2, "initial_const": 1.0,
                          "step_size": 0.1},
    "jsma": {"gamma": 0.5},
    "apgd-ce": {"steps": 10},
    "apgd-dlr": {"steps": 10},
    "apgd-t": {"steps": 10, "n_targets": 3},
    "fab": {"steps": 20, "search_steps": 3},
    "fab-t": {"steps": 20, "n_targets": 2, "search_steps": 3},
    "autoattack": {"steps": 5, "n_targets": 2, "max_queries": 20},
}

# Finite radii for fixed-eps attacks (and, beside eps = inf, for minimal-norm ones). An L0
# radius counts features.
EPS: dict[str, float] = {"linf": 0.3, "l2": 1.0, "l1": 2.0, "l0": 4}

CLASSES = 4
IMAGE_SHAPE = (1, 8, 8)
KINDS = ("tabular", "image")
PROPERTY = settings(max_examples=25, deadline=None)

# A fixed mixed tabular domain of moderate magnitude: continuous, integer (steps 1 and 0.25),
# binary, a one-hot group, an immutable, an increase-only and a decrease-only feature.
TAB_LOWER = (0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
TAB_UPPER = (1.0, 1.0, 1.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0)
TAB_KINDS = ("continuous", "continuous", "continuous", "integer", "integer", "binary",
             "continuous", "continuous", "continuous", "continuous", "continuous", "integer",
             "continuous")
TAB_RES = (1.0, 1.0, 1.0, 1.0, 0.25, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
TAB_GROUP, TAB_IMMUTABLE, TAB_INC, TAB_DEC = (6, 7, 8), 9, 11, 12
TAB_FEATURES = len(TAB_LOWER)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """The models are tiny: one thread is faster, and immune to oversubscription on a busy
    2-core machine (where two OpenMP threads made each attack call ~100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- registry cases

@dataclass(frozen=True)
class Case:
    """One registry case: an attack, a norm it supports and a radius it must handle."""

    spec: AttackSpec
    norm: str
    eps: float

    @property
    def id(self) -> str:
        eps = "inf" if math.isinf(self.eps) else f"{self.eps:g}"
        return f"{self.spec.name}-{self.norm}-eps{eps}"


def registry_cases(predicate: Any = None) -> list[Any]:
    """Every registered attack × each norm it supports × its radii (finite; minimal-norm
    attacks also eps = inf), filtered by ``predicate(spec)``."""
    out = []
    for spec in ATTACKS.values():
        if predicate is not None and not predicate(spec):
            continue
        for norm in spec.norms:
            for eps in (EPS[norm], math.inf) if spec.minimal_norm else (EPS[norm],):
                case = Case(spec, norm, eps)
                out.append(pytest.param(case, id=case.id))
    return out


def accepts(spec: AttackSpec, name: str) -> bool:
    return name in inspect.signature(spec.fn).parameters


def run(spec: AttackSpec, model: Any, x: Tensor, y: Tensor, threat: ThreatModel,
        **kwargs: Any) -> Tensor:
    """Call an attack with the suite's small budget; ``kwargs`` override it."""
    return spec.fn(model, x, y, threat, **{**KNOBS.get(spec.name, {}), **kwargs})


def changed(x_adv: Tensor, x: Tensor) -> Tensor:
    """Per-sample bool: any feature differs."""
    return (x_adv != x).flatten(1).any(dim=1)


# --------------------------------------------------------------------------- models and data

def tabular_domain() -> Domain:
    return Domain(lower=TAB_LOWER, upper=TAB_UPPER, kinds=TAB_KINDS, resolution=TAB_RES,
                  one_hot_groups=[TAB_GROUP], immutable=[TAB_IMMUTABLE], increase_only=[TAB_INC],
                  decrease_only=[TAB_DEC])


def build_model(kind: str, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A small random zoo model in eval mode."""
    torch.manual_seed(seed)
    if kind == "tabular":
        model: nn.Module = mlp(TAB_FEATURES, CLASSES, hidden=(32,))
    else:
        model = small_cnn(IMAGE_SHAPE, CLASSES, channels=(4, 8), hidden=16)
    return sharpen(model).to(dtype).eval()


@torch.no_grad()
def sharpen(model: nn.Module, factor: float = 4.0) -> nn.Module:
    """Scale the first layer's weights: a freshly initialised network is nearly constant over
    the input box, with decision boundaries out of reach of this suite's small budgets."""
    first = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    first.weight.mul_(factor)
    return model


class ModeProbe(nn.Module):
    """Identity layer that records ``self.training`` at every call."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(self.training)
        return x


def stochastic_model(kind: str, *, seed: int = 0) -> nn.Sequential:
    """A model with BatchNorm and Dropout, whose outputs and buffers depend on the mode, and a
    :class:`ModeProbe` first."""
    torch.manual_seed(seed)
    if kind == "tabular":
        return nn.Sequential(ModeProbe(), nn.Flatten(), nn.Linear(TAB_FEATURES, 16),
                             nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
                             nn.Linear(16, CLASSES))
    return nn.Sequential(ModeProbe(), nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 64, CLASSES))


def make_inputs(kind: str, n: int, *, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> tuple[Tensor, Domain]:
    """Valid random inputs and their domain (the mixed tabular domain, or the [0, 1] box)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "tabular":
        domain = tabular_domain()
        lo, hi = torch.tensor(TAB_LOWER), torch.tensor(TAB_UPPER)
        x = domain.project((lo + (hi - lo) * torch.rand(n, TAB_FEATURES, generator=g)).to(dtype))
    else:
        domain = Domain(0.0, 1.0)
        x = torch.rand(n, *IMAGE_SHAPE, generator=g).to(dtype)
    assert bool(domain.contains(x).all()), "the test inputs themselves must be valid"
    return x, domain


@torch.no_grad()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    """Eval-mode predictions, restoring every submodule's mode by hand (not with advlab's
    ``eval_mode``, which is under test)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    pred = model(x).argmax(dim=1)
    for m, mode in modes:
        m.training = mode
    return pred


@dataclass
class Problem:
    model: nn.Module
    x: Tensor
    y: Tensor
    threat: ThreatModel


# Seeds of random models whose decision boundaries are within reach of every attack's small
# budget, untargeted and targeted, for several samples (checked by the non-vacuity asserts).
SEEDS = {"tabular": 3, "image": 0}


def make_problem(kind: str, norm: str, eps: float, *, n: int = 8, seed: int | None = None,
                 dtype: torch.dtype = torch.float32, model: nn.Module | None = None) -> Problem:
    """A random model and valid inputs that it classifies correctly (``y`` is its prediction),
    so that every sample gives the attack work to do."""
    seed = SEEDS[kind] if seed is None else seed
    model = build_model(kind, seed=seed, dtype=dtype) if model is None else model
    x, domain = make_inputs(kind, n, seed=seed + 1, dtype=dtype)
    return Problem(model, x, predict(model, x), ThreatModel(norm, eps, domain))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the registry

def test_registry_is_consistent() -> None:
    assert ATTACKS, "no attack registered"
    for name, spec in ATTACKS.items():
        assert spec.name == name
        assert spec.norms and set(spec.norms) <= set(norms.NORMS), name
        params = inspect.signature(spec.fn).parameters
        assert list(params)[:4] == ["model", "x", "y", "threat"], name
        # ``targeted`` says whether the attack takes ``target=``: the CLI relies on it
        assert ("target" in params) == spec.targeted, name
        if not spec.deterministic:  # randomness must come from a generator, never the global RNG
            assert "generator" in params, f"{name} is randomised but takes no generator"
    for name, knobs in KNOBS.items():  # this suite's budgets must not go stale
        assert name in ATTACKS, name
        assert set(knobs) <= set(inspect.signature(ATTACKS[name].fn).parameters), name


# --------------------------------------------------------------------------- output contract

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases())
def test_output_shape_dtype_device_and_detached(case: Case, kind: str, dtype: torch.dtype) -> None:
    p = make_problem(kind, case.norm, case.eps, dtype=dtype)
    x_adv = run(case.spec, p.model, p.x, p.y, p.threat)
    assert x_adv.shape == p.x.shape
    assert x_adv.dtype == p.x.dtype
    assert x_adv.device == p.x.device
    assert not x_adv.requires_grad and x_adv.grad_fn is None
    assert bool(p.threat.domain.contains(x_adv, p.x).all())
    # the attack did something: every sample is clean-correct, so there is work to do
    assert bool(changed(x_adv, p.x).any()), f"{case.id} left every sample unchanged"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases())
def test_input_requiring_grad_gives_detached_output(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps)
    x = p.x.clone().requires_grad_(True)
    x_adv = run(case.spec, p.model, x, p.y, p.threat, **_seeded(case.spec))
    assert not x_adv.requires_grad and x_adv.grad_fn is None
    assert x.grad is None
    assert_close(x_adv, run(case.spec, p.model, p.x, p.y, p.threat, **_seeded(case.spec)))


def _seeded(spec: AttackSpec, seed: int = 0) -> dict[str, Any]:
    return {"generator": torch.Generator().manual_seed(seed)} if accepts(spec, "generator") else {}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases())
def test_inputs_are_not_mutated(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps)
    extra: dict[str, Any] = {}
    if case.spec.targeted:
        extra["target"] = targets.random(p.y, CLASSES, generator=torch.Generator().manual_seed(3))
    before = (p.x.clone(), p.y.clone(), {k: v.clone() for k, v in extra.items()})
    run(case.spec, p.model, p.x, p.y, p.threat, **extra)
    assert torch.equal(p.x, before[0])
    assert torch.equal(p.y, before[1])
    for k, v in extra.items():
        assert torch.equal(v, before[2][k]), k


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases(lambda s: not s.minimal_norm))
def test_fixed_eps_attacks_stay_in_the_threat_model(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps)
    for target in (None, targets.next(p.y, CLASSES)) if case.spec.targeted else (None,):
        extra = {} if target is None else {"target": target}
        x_adv = run(case.spec, p.model, p.x, p.y, p.threat, **extra)
        inside = p.threat.contains(x_adv, p.x)
        assert bool(inside.all()), (
            f"{case.id}: samples {(~inside).nonzero()[:, 0].tolist()} leave the threat model; "
            f"{case.norm} norms {norms.norm(x_adv - p.x, case.norm).tolist()}")


# --------------------------------------------------------------------------- the model

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases())
def test_model_mode_parameters_and_buffers_are_untouched(case: Case, kind: str) -> None:
    for model in (build_model(kind), stochastic_model(kind)):
        p = make_problem(kind, case.norm, case.eps, model=model)
        model.train()
        model[-1].eval()  # a mixed state must come back exactly, module by module
        modes = [m.training for m in model.modules()]
        state = {k: v.clone() for k, v in model.state_dict().items()}
        probe = model[0] if isinstance(model[0], ModeProbe) else None
        if probe is not None:
            probe.seen.clear()
        run(case.spec, model, p.x, p.y, p.threat)
        assert [m.training for m in model.modules()] == modes
        for param in model.parameters():
            assert param.grad is None
            assert param.requires_grad
        for k, v in model.state_dict().items():  # weights, BatchNorm statistics and counters
            assert torch.equal(v, state[k]), f"{case.id} changed {k}"
        if probe is not None:
            assert probe.seen and not any(probe.seen), f"{case.id} ran the model in train mode"


# --------------------------------------------------------------------------- the domain

KIND_NAMES = ("continuous", "integer", "binary")
RULES = ("free", "immutable", "increase", "decrease")


@st.composite
def tabular_domains(draw: Any) -> Domain:
    """A random tabular domain: at least one continuous, integer (random resolution) and binary
    feature, an immutable, an increase-only and a decrease-only feature, a one-hot group, and a
    few random extra features; bounds ``lower <= upper``, some of them infinite (continuous).
    One domain in four is continuous only (no integer, binary or one-hot feature), which
    attacks treat differently: they skip the discrete repair there."""
    discrete = draw(st.integers(0, 3)) > 0
    kind = st.sampled_from(KIND_NAMES if discrete else ("continuous",))
    features = [(draw(kind), "free") for _ in range(3)]
    if discrete:
        features = [("continuous", "free"), ("integer", "free"), ("binary", "free")]
    features += [(draw(kind), "immutable"), (draw(kind), "increase"), (draw(kind), "decrease")]
    features += draw(st.lists(st.tuples(kind, st.sampled_from(RULES)), max_size=4))
    group = draw(st.integers(2, 4)) if discrete else 0
    order = draw(st.permutations(range(len(features) + group)))
    total = len(order)
    lower, upper = [0.0] * total, [1.0] * total
    kinds, res = ["continuous"] * total, [1.0] * total
    rules: dict[str, list[int]] = {r: [] for r in RULES}
    number = st.floats(-3.0, 3.0, allow_subnormal=False)
    width = st.floats(0.0, 4.0, allow_subnormal=False)
    for (k, rule), col in zip(features, order, strict=False):
        lo, hi = draw(number), None
        if k == "continuous":
            side = draw(st.sampled_from(("finite",) * 5 + ("no-lower", "no-upper", "none")))
            hi = lo + draw(width)
            lo = -math.inf if side in ("no-lower", "none") else lo
            hi = math.inf if side in ("no-upper", "none") else hi
        elif k == "integer":
            res[col] = draw(st.floats(0.1, 2.0))
            hi = lo + draw(st.floats(0.0, 5.0, allow_subnormal=False))
        else:
            hi = lo + draw(width)
        lower[col], upper[col], kinds[col] = lo, hi, k
        rules[rule].append(col)
    groups = [sorted(order[len(features):])] if discrete else []
    return Domain(lower=lower, upper=upper, kinds=kinds, resolution=res, one_hot_groups=groups,
                  immutable=rules["immutable"], increase_only=rules["increase"],
                  decrease_only=rules["decrease"])


def valid_points(domain: Domain, n: int, seed: int, dtype: torch.dtype) -> Tensor:
    """Random valid points: uniform in the (finite part of the) box, some pushed onto its faces,
    then made valid by ``domain.project``."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = (b.to(torch.float64).clamp(-8, 8) for b in (domain.lower, domain.upper))
    f = lo.numel()
    raw = lo + (hi - lo) * torch.rand(n, f, generator=g, dtype=torch.float64)
    side = torch.randint(0, 2, (n, f), generator=g) * 2 - 1
    push = (torch.rand(n, f, generator=g) < 0.2) * side
    x = domain.project((raw + 4.0 * push).to(dtype))
    assert bool(domain.contains(x).all()), "domain.project must give valid points"
    return x


def draw_eps(data: Any, norm: str, features: int, minimal: bool) -> float:
    if minimal and data.draw(st.booleans(), label="eps = inf"):
        return math.inf
    if norm == "l0":
        return float(data.draw(st.integers(1, features), label="eps"))
    top = {"linf": 2.0, "l2": 4.0, "l1": 6.0}[norm]
    return data.draw(st.floats(0.05, top), label="eps")


@pytest.mark.parametrize("case", registry_cases())
@PROPERTY
@given(domain=tabular_domains(), seed=st.integers(0, 2**16), data=st.data())
def test_domain_is_respected(case: Case, domain: Domain, seed: int, data: Any) -> None:
    dtype = torch.float64 if seed % 2 else torch.float32
    features = domain.n_features
    assert features is not None
    threat = ThreatModel(case.norm, draw_eps(data, case.norm, features, case.spec.minimal_norm),  # type: ignore[arg-type]
                         domain)
    x = valid_points(domain, 6, seed, dtype)
    torch.manual_seed(seed)
    model = sharpen(mlp(features, 3, hidden=(16,))).to(dtype).eval()
    y = predict(model, x)
    extra: dict[str, Any] = {}
    if case.spec.targeted and data.draw(st.booleans(), label="targeted"):
        extra["target"] = targets.random(y, 3, generator=torch.Generator().manual_seed(seed))
    x_adv = run(case.spec, model, x, y, threat, **extra)
    bad = domain.violations(x_adv, x)
    assert not bool(bad.any()), _describe(domain, x, x_adv, bad)
    if not case.spec.minimal_norm:
        assert bool(threat.contains(x_adv, x).all())


@pytest.mark.parametrize("case", registry_cases())
def test_half_bounded_continuous_domain_is_respected(case: Case) -> None:
    """Regression: C&W treated a coordinate with one infinite bound as free on both sides, so
    in a continuous domain (no discrete repair) it crossed the finite bound."""
    inf = math.inf
    domain = Domain(lower=[0.0, 0.0, -inf, -inf, -1.0, 0.0], upper=[inf, inf, 0.0, inf, 1.0, inf],
                    increase_only=[3], decrease_only=[1])
    torch.manual_seed(1)
    model = sharpen(mlp(6, 3, hidden=(16,))).eval()
    g = torch.Generator().manual_seed(2)
    x = domain.project(torch.randn(32, 6, generator=g))  # many points on the finite faces
    y = predict(model, x)
    x_adv = run(case.spec, model, x, y, ThreatModel(case.norm, case.eps, domain))  # type: ignore[arg-type]
    assert bool(changed(x_adv, x).any())
    bad = domain.violations(x_adv, x)
    assert not bool(bad.any()), _describe(domain, x, x_adv, bad)


def test_float32_integer_feature_at_its_bound_stays_on_the_grid() -> None:
    """Regression: Domain.project kept integer values up to 8 ulps (scaled) off their grid, more
    than Domain.contains accepts; C&W's tanh round trip leaves such noise at an upper bound."""
    domain = Domain(lower=[0.0] * 4, upper=[1.0, 1.0, 1.0, 2.0], kinds={3: "integer"})
    torch.manual_seed(0)
    model = sharpen(mlp(4, 3, hidden=(16,))).eval()
    x = torch.rand(16, 4)
    x[:, 3] = 2.0  # a count at its upper bound
    y = predict(model, x)
    x_adv = run(ATTACKS["carlini_wagner_l2"], model, x, y, ThreatModel("l2", math.inf, domain))
    assert bool(changed(x_adv, x).any())
    bad = domain.violations(x_adv, x)
    assert not bool(bad.any()), _describe(domain, x, x_adv, bad)


def _describe(domain: Domain, x: Tensor, x_adv: Tensor, bad: Tensor) -> str:
    i, j = (int(v) for v in bad.nonzero()[0])
    rules = [name for name, m in (("immutable", domain.immutable), ("increase-only",
             domain.increase_only), ("decrease-only", domain.decrease_only))
             if m is not None and bool(m[j])]
    kind = domain.kind_mask("integer")
    kind_name = "integer" if kind is not None and bool(kind[j]) else (
        "binary" if (b := domain.kind_mask("binary")) is not None and bool(b[j]) else "continuous")
    return (f"sample {i}, feature {j} ({kind_name} {rules}, bounds [{float(domain.lower[j])}, "  # type: ignore[index]
            f"{float(domain.upper[j])}]): {float(x[i, j])} -> {float(x_adv[i, j])}")  # type: ignore[index]


# --------------------------------------------------------------------------- targets

@pytest.mark.parametrize("case", registry_cases(lambda s: s.targeted))
def test_targeted_successes_hit_the_target(case: Case) -> None:
    reached = 0
    for kind in KINDS:
        p = make_problem(kind, case.norm, case.eps)
        target = targets.random(p.y, CLASSES, generator=torch.Generator().manual_seed(1))
        x_adv = run(case.spec, p.model, p.x, p.y, p.threat, target=target)
        result = score(p.model, p.x, p.y, x_adv, p.threat, target=target)
        pred = predict(p.model, x_adv)
        assert torch.equal(result.fooled, pred == target)
        assert torch.equal(pred[result.success], target[result.success])
        if case.spec.minimal_norm:  # x itself where no success: every change is a success
            moved = changed(x_adv, p.x)
            assert torch.equal(pred[moved], target[moved])
        reached += int(result.success.sum())
    # not vacuous (a one-pixel L1 FGSM may miss on images, so counted over both models)
    assert reached > 0, f"{case.id} reached no target at all"


@pytest.mark.parametrize("case", registry_cases(lambda s: s.targeted))
def test_target_equal_to_the_label_raises(case: Case) -> None:
    p = make_problem("tabular", case.norm, case.eps)
    target = targets.next(p.y, CLASSES)
    target[2] = p.y[2]
    with pytest.raises(ValueError, match="target equals the true label for sample 2"):
        run(case.spec, p.model, p.x, p.y, p.threat, target=target)


# --------------------------------------------------------------------------- determinism

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases(lambda s: s.deterministic))
def test_deterministic_attacks_are_batch_invariant(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps, n=5, dtype=torch.float64)
    extra: dict[str, Any] = {}
    if case.spec.targeted:
        extra["target"] = targets.next(p.y, CLASSES)
    x_adv = run(case.spec, p.model, p.x, p.y, p.threat, **extra)
    for i in range(p.x.shape[0]):
        one = {k: v[i:i + 1] for k, v in extra.items()}
        alone = run(case.spec, p.model, p.x[i:i + 1], p.y[i:i + 1], p.threat, **one)
        assert_close(alone[0], x_adv[i], rtol=1e-6, atol=1e-7, msg=f"{case.id}: sample {i}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases(lambda s: accepts(s, "generator")))
def test_same_generator_seed_gives_the_same_result(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps)
    first = run(case.spec, p.model, p.x, p.y, p.threat, **_seeded(case.spec, 7))
    again = run(case.spec, p.model, p.x, p.y, p.threat, **_seeded(case.spec, 7))
    assert torch.equal(first, again)
    if not case.spec.deterministic:  # the generator is really used
        other = run(case.spec, p.model, p.x, p.y, p.threat, **_seeded(case.spec, 8))
        assert not torch.equal(first, other)


# --------------------------------------------------------------------------- minimal-norm

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases(lambda s: s.minimal_norm))
def test_minimal_norm_leaves_misclassified_inputs_unchanged(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps)
    pred = p.y
    mis = torch.arange(p.x.shape[0]) % 2 == 0
    y = torch.where(mis, (pred + 1) % CLASSES, pred)
    x_adv = run(case.spec, p.model, p.x, y, p.threat)
    assert torch.equal(x_adv[mis], p.x[mis])
    # x itself where no success was found: every changed sample is misclassified
    moved = changed(x_adv, p.x)
    assert bool(moved.any()), f"{case.id} found no adversarial example at all"
    assert bool((predict(p.model, x_adv)[moved] != y[moved]).all())
    if case.spec.targeted:  # inputs already classified as their target come back unchanged
        y = (pred + 1) % CLASSES
        target = torch.where(mis, pred, (pred + 2) % CLASSES)
        x_adv = run(case.spec, p.model, p.x, y, p.threat, target=target)
        assert torch.equal(x_adv[mis], p.x[mis])


# --------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("case", registry_cases())
def test_bad_inputs_raise_a_clear_value_error(case: Case) -> None:
    p = make_problem("tabular", case.norm, case.eps)
    name = case.spec.name
    with pytest.raises(ValueError, match=f"{name}: y must be int64"):
        run(case.spec, p.model, p.x, p.y.float(), p.threat)
    with pytest.raises(ValueError, match=f"{name}: y must be int64"):
        run(case.spec, p.model, p.x, p.y.int(), p.threat)
    with pytest.raises(ValueError, match=rf"{name}: y must be int64 of shape \(8,\)"):
        run(case.spec, p.model, p.x, p.y[:-1], p.threat)
    with pytest.raises(ValueError, match=rf"{name}: y must be int64 of shape \(8,\)"):
        run(case.spec, p.model, p.x, p.y[:, None], p.threat)
    with pytest.raises(ValueError, match=f"{name}: x must be a floating tensor"):
        run(case.spec, p.model, p.x[0], p.y[:1], p.threat)
    outside = p.x.clone()
    outside[3, 0] = 1.5  # above the upper bound 1 of feature 0
    with pytest.raises(ValueError, match=f"{name}: x: sample 3, feature 0 .* outside the domain"):
        run(case.spec, p.model, outside, p.y, p.threat)
    off_grid = p.x.clone()
    off_grid[1, 3] = 2.5  # integer feature with step 1
    with pytest.raises(ValueError, match="outside the domain .*integer feature off the grid"):
        run(case.spec, p.model, off_grid, p.y, p.threat)
    if case.spec.targeted:
        with pytest.raises(ValueError, match=f"{name}: target must be int64"):
            run(case.spec, p.model, p.x, p.y, p.threat, target=targets.next(p.y, CLASSES).float())


UNSUPPORTED = [pytest.param(s, p, id=f"{s.name}-{p}") for s in ATTACKS.values()
               for p in norms.NORMS if p not in s.norms]


@pytest.mark.parametrize(("spec", "norm"), UNSUPPORTED)
def test_unsupported_norm_raises(spec: AttackSpec, norm: str) -> None:
    p = make_problem("tabular", norm, EPS[norm])
    with pytest.raises(ValueError, match=f"(?i){spec.name}: .*{norm}"):
        run(spec, p.model, p.x, p.y, p.threat)


# --------------------------------------------------------------------------- side effects

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases())
def test_attacks_are_silent_and_leave_global_rng_alone(case: Case, kind: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    p = make_problem(kind, case.norm, case.eps)
    extra = _seeded(case.spec)
    capsys.readouterr()
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(case.spec, p.model, p.x, p.y, p.threat, **extra)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert [str(w.message) for w in caught] == []
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", registry_cases())
def test_query_counter_sees_the_attack(case: Case, kind: str) -> None:
    p = make_problem(kind, case.norm, case.eps)
    counter = QueryCounter(p.model)
    run(case.spec, counter, p.x, p.y, p.threat)
    assert counter.forwards >= p.x.shape[0]
    assert counter.calls > 0


@pytest.mark.parametrize("case", registry_cases())
def test_plain_callable_model_gives_the_same_result(case: Case) -> None:
    p = make_problem("image", case.norm, case.eps)
    module = run(case.spec, p.model, p.x, p.y, p.threat, **_seeded(case.spec))
    plain = run(case.spec, lambda x: p.model(x), p.x, p.y, p.threat, **_seeded(case.spec))
    assert torch.equal(module, plain)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize(("steps", "restarts"), [(1, 1), (3, 1), (4, 2)])
def test_pgd_without_early_stop_takes_exactly_steps_gradients(norm: str, steps: int,
                                                              restarts: int) -> None:
    p = make_problem("image", norm, EPS[norm], n=6)
    counter = QueryCounter(p.model)
    pgd(counter, p.x, p.y, p.threat, steps=steps, restarts=restarts, early_stop=False,
        generator=torch.Generator().manual_seed(0))
    assert counter.gradients == restarts * steps * p.x.shape[0]
    counter.reset()
    pgd(counter, p.x, p.y, p.threat, steps=steps, restarts=restarts, early_stop=True,
        generator=torch.Generator().manual_seed(0))
    assert 0 < counter.gradients <= restarts * steps * p.x.shape[0]


# --------------------------------------------------------------------------- scoring

class Linear2(nn.Module):
    """Two-class affine model, ``logits = [-f, f]`` with ``f = w·x + b``."""

    def __init__(self, w: Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x: Tensor) -> Tensor:
        f = x.flatten(1) @ self.w + self.b
        return torch.stack([-f, f], dim=1)


def test_score_success_is_fooled_and_in_threat() -> None:
    model = build_model("tabular")
    x, domain = make_inputs("tabular", 64, seed=3)
    y = predict(model, x)
    threat = ThreatModel("l2", 1.0, domain)
    g = torch.Generator().manual_seed(4)
    scale = torch.rand(64, 1, generator=g) * 3  # from well inside to well outside the ball
    x_adv = x + torch.randn(x.shape, generator=g) * scale / math.sqrt(x.shape[1])
    x_adv[::3] = domain.project(x_adv[::3], x[::3])  # some valid, some not
    s = score(model, x, y, x_adv, threat)
    assert isinstance(s, Score)
    assert torch.equal(s.fooled, predict(model, x_adv) != y)
    assert torch.equal(s.in_threat, threat.contains(x_adv, x))
    assert torch.equal(s.in_domain, domain.contains(x_adv, x))
    assert torch.equal(s.success, s.fooled & s.in_threat)
    assert torch.equal(s.clean_correct, torch.ones(64, dtype=torch.bool))
    # the mixture really exercises every combination of fooled and in_threat
    for f in (True, False):
        for t in (True, False):
            assert bool(((s.fooled == f) & (s.in_threat == t)).any()), (f, t)
    assert torch.equal(s.margin > 0, s.fooled)  # positive exactly when fooled (no ties here)
    for p in norms.NORMS:
        assert_close(getattr(s, p), norms.norm(x_adv - x, p))


def test_score_outside_the_ball_is_not_a_success_even_if_fooled() -> None:
    w = torch.tensor([1.0, -2.0, 0.5])
    model = Linear2(w, -0.2)
    x = torch.tensor([[0.1, 0.4, 0.2], [0.3, 0.5, 0.1]])  # f < 0: class 0
    y = torch.zeros(2, dtype=torch.long)
    dist = (-(x @ w - 0.2)) / w.norm()  # exact L2 distance to the boundary
    threat = ThreatModel("l2", float(dist.max()) * 1.5, Domain(-10.0, 10.0))
    u = w / w.norm()
    near = x + (dist * 1.1)[:, None] * u  # just across the boundary: inside the ball
    far = x + (dist.max() * 3.0) * u  # across it too, but outside the ball
    s = score(model, x, y, torch.cat([near[:1], far[1:]]), threat)
    assert s.fooled.tolist() == [True, True]
    assert s.in_threat.tolist() == [True, False]
    assert s.success.tolist() == [True, False]
    out_of_domain = near.clone()
    out_of_domain[:, 2] = 11.0  # fooled, in no domain: not a success either
    s = score(model, x, y, out_of_domain, ThreatModel("linf", math.inf, Domain(-10.0, 10.0)))
    assert s.fooled.all() and not s.in_domain.any() and not s.success.any()


def test_score_targeted_counts_only_the_target() -> None:
    model = build_model("image")
    x, domain = make_inputs("image", 32, seed=5)
    y = predict(model, x)
    target = targets.random(y, CLASSES, generator=torch.Generator().manual_seed(0))
    x_adv = (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    threat = ThreatModel("linf", 1.0, domain)
    pred = predict(model, x_adv)
    s = score(model, x, y, x_adv, threat, target=target)
    assert torch.equal(s.fooled, pred == target)
    assert torch.equal(s.success, (pred == target) & threat.contains(x_adv, x))
    assert torch.equal(s.margin > 0, pred == target)
    assert bool((~s.fooled & (pred != y)).any()), "want a sample fooled off-target too"


def test_score_summary_keys_and_values() -> None:
    model = Linear2(torch.tensor([1.0, 0.0]), 0.0)  # class 1 iff x_0 > 0
    x = torch.tensor([[-0.5, 0.0], [-0.5, 0.0], [-0.5, 0.0], [0.5, 0.0]])
    y = torch.tensor([0, 0, 0, 0])  # the last is misclassified already
    x_adv = torch.tensor([[0.1, 0.0], [2.0, 0.0], [-0.4, 0.0], [0.5, 0.0]])
    threat = ThreatModel("linf", 1.0, Domain(-5.0, 5.0))
    s = score(model, x, y, x_adv, threat)
    assert s.success.tolist() == [True, False, False, True]
    summary = s.summary()
    assert set(summary) == {"success_rate", "fooled_rate", "in_threat_rate", "clean_accuracy",
                            "robust_accuracy", "median_l0", "median_l1", "median_l2",
                            "median_linf"}
    assert all(isinstance(v, float) for v in summary.values())
    expected = {"success_rate": 0.5, "fooled_rate": 0.75, "in_threat_rate": 0.75,
                "clean_accuracy": 0.75, "robust_accuracy": 0.5}
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value), key
    for key in ("success_rate", "fooled_rate", "in_threat_rate", "clean_accuracy",
                "robust_accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["robust_accuracy"] <= summary["clean_accuracy"]
    assert summary["success_rate"] <= min(summary["fooled_rate"], summary["in_threat_rate"])
    # medians over the successes only: perturbations 0.6 and 0 on the first coordinate
    assert summary["median_linf"] == pytest.approx(0.0)  # torch's median: the lower middle
    assert summary["median_l0"] == pytest.approx(0.0)
    for key in ("median_l0", "median_l1", "median_l2", "median_linf"):
        assert summary[key] >= 0
    none = score(model, x[:3], y[:3], x[:3], threat).summary()
    assert none["success_rate"] == 0.0
    assert all(math.isnan(none[f"median_{p}"]) for p in norms.NORMS)


def test_score_is_chunk_invariant_and_restores_the_model() -> None:
    model = stochastic_model("image")
    x, domain = make_inputs("image", 10, seed=6)
    y = predict(model, x)
    x_adv = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    threat = ThreatModel("l2", 1.0, domain)
    model.train()
    whole = score(model, x, y, x_adv, threat)
    parts = score(model, x, y, x_adv, threat, batch_size=3)
    assert model.training and all(m.training for m in model.modules())
    for field in ("success", "fooled", "in_threat", "in_domain", "clean_correct"):
        assert torch.equal(getattr(whole, field), getattr(parts, field)), field
    assert_close(whole.margin, parts.margin)
    with pytest.raises(ValueError, match="x_adv has shape"):
        score(model, x, y, x_adv[:-1], threat)
    with pytest.raises(ValueError, match="must have shape"):
        score(model, x, y[:-1], x_adv, threat)

"""AutoAttack: each stage sees only the samples still robust; the result is the per-sample
worst case, and the final robust set is the intersection of the stages' robust sets."""

from __future__ import annotations

import importlib

import pytest
import torch

from advlab import Domain, ThreatModel
from advlab.attacks import autoattack, autoattack_cascade
from advlab.attacks.autoattack import stages
from advlab.evaluation import score
from advlab.models import mlp

# the module (the package attribute of that name is the function)
aa = importlib.import_module("advlab.attacks.autoattack")


def _problem(n: int = 48, classes: int = 5):
    torch.manual_seed(0)
    model = mlp(10, classes, hidden=(32,)).eval()
    with torch.no_grad():
        model[1].weight.mul_(4)
    x = torch.rand(n, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:3] = (y[:3] + 1) % classes  # three misclassified samples: never attacked
    return model, x, y


@pytest.mark.parametrize("version", ["standard", "plus", "rand"])
def test_each_stage_sees_only_the_still_robust_samples(version, monkeypatch) -> None:
    model, x, y = _problem()
    threat = ThreatModel("linf", 0.08, Domain(0.0, 1.0))
    seen: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    real = aa.stages

    def spying(*args, **kwargs):
        def spy(name, attack):
            def run(m, xs, ys, th):
                out = attack(m, xs, ys, th)
                seen.append((name, xs.clone(), out.clone()))
                return out
            return run
        return [(name, spy(name, attack)) for name, attack in real(*args, **kwargs)]

    monkeypatch.setattr(aa, "stages", spying)
    result = autoattack_cascade(model, x, y, threat, version=version, steps=10, n_targets=3,
                                max_queries=30, generator=torch.Generator().manual_seed(0))
    correct = model(x).argmax(1) == y
    assert torch.equal(result.clean_correct, correct)
    robust = correct.clone()
    rows = torch.arange(x.shape[0])
    for (name, xs, out), record in zip(seen, result.stages, strict=False):
        assert record.name == name
        assert torch.equal(xs, x[robust]), f"{name} saw samples already broken"
        assert record.attacked == int(robust.sum())
        idx = rows[robust]
        broken = score(model, xs, y[idx], out, threat).success
        assert record.removed == int(broken.sum())
        # the first success is kept: later stages never touch a broken sample
        assert torch.equal(result.x_adv[idx[broken]], out[broken])
        robust[idx[broken]] = False
    assert len(seen) == len([r for r in result.stages if r.attacked])
    assert torch.equal(result.robust, robust)  # correct and unbroken by every stage
    final = score(model, x, y, result.x_adv, threat)
    assert torch.equal(final.success & correct, correct & ~result.robust)
    assert bool(final.in_threat.all())
    assert torch.equal(result.x_adv[~correct], x[~correct])
    assert sum(r.removed for r in result.stages) == int(correct.sum() - result.robust.sum())
    assert result.to_dict()["robust"] == int(result.robust.sum())


def test_stages_follow_the_versions() -> None:
    assert [n for n, _ in stages("standard", "linf")] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert [n for n, _ in stages("plus", "l2")] == ["apgd-ce", "apgd-dlr", "fab", "square",
                                                   "apgd-t", "fab-t"]
    assert [n for n, _ in stages("rand", "linf")] == ["apgd-ce", "apgd-dlr"]
    assert [n for n, _ in stages("standard", "l1")] == ["apgd-ce", "apgd-t", "fab-t"]
    standard = dict(stages("standard", "linf"))
    assert standard["apgd-ce"].keywords["steps"] == 100
    assert standard["apgd-t"].keywords["n_targets"] == 9
    assert standard["square"].keywords["max_queries"] == 5000
    plus = dict(stages("plus", "linf"))
    assert plus["apgd-ce"].keywords["restarts"] == plus["fab"].keywords["restarts"] == 5
    assert all(f.keywords["eot_iter"] == 20 for _, f in stages("rand", "linf"))
    with pytest.raises(ValueError, match="version must be one of"):
        stages("fast", "linf")  # type: ignore[arg-type]


def test_autoattack_is_at_least_as_strong_as_its_first_stage() -> None:
    model, x, y = _problem(n=64)
    threat = ThreatModel("l2", 0.3, Domain(0.0, 1.0))
    first = dict(stages("standard", "l2", steps=20, generator=torch.Generator().manual_seed(0)))
    ce = score(model, x, y, first["apgd-ce"](model, x, y, threat), threat).success
    full = score(model, x, y, autoattack(model, x, y, threat, steps=20, n_targets=3,
                                         max_queries=50,
                                         generator=torch.Generator().manual_seed(0)),
                 threat).success
    assert bool((full | ~ce).all())  # every sample APGD-CE breaks, AutoAttack breaks too

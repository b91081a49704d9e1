"""Which attack runs at which norm (issue 19): attacks without a norm run at every norm of the
grid they support, the coverage says why a pair did not run, and knob ranges are checked when a
run is built."""

from __future__ import annotations

import pytest

from advlab.attacks import ATTACKS
from advlab.attacks.knobs import VOCABULARY, Range, knob_problem
from advlab.evaluation import attack_parameters
from advlab.evaluation.runs import (
    AttackRun,
    build_runs,
    expand_norms,
    make_run,
    norm_coverage,
)


def norms(entries) -> list[tuple[str, str]]:
    return [(e["name"] if isinstance(e, dict) else e.name,
             e["norm"] if isinstance(e, dict) else e.norm) for e in entries]


def test_an_attack_without_a_norm_runs_at_every_supported_grid_norm() -> None:
    out = expand_norms(["fgsm", {"name": "deepfool"}, {"name": "carlini_wagner_l2"}],
                       ["l2", "linf", "l1"])
    assert norms(out) == [("fgsm", "linf"), ("fgsm", "l2"), ("fgsm", "l1"),
                          ("deepfool", "linf"), ("deepfool", "l2"), ("carlini_wagner_l2", "l2")]


def test_an_explicit_norm_wins_and_is_kept() -> None:
    entries = [{"name": "pgd", "steps": 5}, {"name": "pgd", "norm": "l2", "steps": 9},
               {"name": "pgd", "constraints": "box"}, AttackRun("fgsm", "l1")]
    out = expand_norms(entries, ["linf", "l2"])
    assert norms(out) == [("pgd", "linf"), ("pgd", "l2"), ("pgd", "linf"), ("pgd", "l2"),
                          ("fgsm", "l1")]
    assert out[1]["steps"] == 9 and out[2]["constraints"] == "box" == out[3]["constraints"]
    assert out[4] is entries[3]


def test_an_attack_with_no_grid_norm_is_an_error() -> None:
    with pytest.raises(ValueError, match="'jsma' supports the norms l0; the eps grid has linf"):
        expand_norms(["fgsm", "jsma"], ["linf"])


def test_coverage_gives_the_runs_or_the_reason() -> None:
    runs = build_runs([{"name": "pgd", "norm": "linf"}, {"name": "carlini_wagner_l2"}])
    rows = {(r["attack"], r["norm"]): r for r in norm_coverage(runs, ["linf", "l2"])}
    assert rows["pgd", "linf"] == {"attack": "pgd", "norm": "linf", "runs": ["pgd"],
                                   "reason": None}
    assert rows["pgd", "l2"]["runs"] == [] and "entries name the norm linf" in \
        rows["pgd", "l2"]["reason"]
    assert rows["carlini_wagner_l2", "linf"]["reason"] == \
        "not supported: carlini_wagner_l2 supports l2"


def test_ranges_read_and_check() -> None:
    assert str(Range(1)) == ">= 1" and str(Range(0, low_open=True)) == "> 0"
    assert str(Range(0, 1, low_open=True)) == "in (0, 1]" and str(Range(nonzero=True)) == \
        "a non-zero number"
    assert Range(1).contains(1) and not Range(1).contains(0) and Range(1).contains(None)
    assert not Range(0).contains(True) and not Range(0).contains(float("nan"))
    assert not Range(0).contains(float("inf")) and not Range(0).contains("3")
    assert knob_problem("pgd", "steps", -3) == "attack 'pgd': steps must be >= 1, got -3"
    assert knob_problem("jsma", "theta", 0, ATTACKS["jsma"].ranges) is not None
    assert knob_problem("pgd", "unknown_knob", -1) is None


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_ranged_knob_rejects_a_value_outside_its_range(name) -> None:
    spec = ATTACKS[name]
    knobs = attack_parameters(name)
    ranged = {k: spec.ranges.get(k) or VOCABULARY.get(k) for k in knobs}
    assert set(spec.ranges) <= set(knobs), "ranges only for knobs of the signature"
    for key, valid in ranged.items():
        if valid is None:
            continue
        bad = valid.low - 1 if valid.low is not None else valid.high + 1 \
            if valid.high is not None else 0
        with pytest.raises(ValueError, match=f"{key} must (be|lie in) "):
            make_run({"name": name, key: bad})
        default = knobs[key].default
        make_run({"name": name, key: default})  # the signature's default is in range


def test_integer_knobs_refuse_fractions_and_literals_their_choices() -> None:
    with pytest.raises(ValueError, match="steps must be an integer, got 2.5"):
        make_run({"name": "pgd", "steps": 2.5})
    with pytest.raises(ValueError, match="box must be one of 'tanh', 'project', 'auto'"):
        make_run({"name": "carlini_wagner_l2", "box": "clip"})

"""Advice checks (see :mod:`advlab.evaluation.checks`): which stronger or adaptive attack to run.

They read the outcome of the model and result checks and the run's configuration:

* ``adaptive_attack``: a randomized component (``eval_mode`` or ``deterministic`` failed) needs
  expectation over transformation (EOT; Athalye, Carlini and Wagner, ICML 2018, §4.3):
  AutoAttack's ``rand`` version runs it (``--suite autoattack-rand``: APGD-CE and APGD-DLR with
  the gradient averaged over 20 draws), ``advlab.attacks.adaptive.eot`` wraps any model. A
  non-differentiable component (``gradient_agrees_with_finite_differences`` or
  ``gradients_nonzero`` failed) may need BPDA (§4.1): ``advlab.attacks.adaptive.bpda(g)`` in place
  of the preprocessing ``g``; vanishing gradients (``gradients_nonzero`` failed) are named with
  both remedies: AutoAttack's scale-invariant and gradient-free stages for a saturated softmax
  (defensive distillation), BPDA for a non-differentiable step. Failed (warning) while an
  attack it asks for has not run.
* ``worst_case_autoattack``: the worst case is taken over AutoAttack (Croce and Hein, ICML 2020)
  at every norm and eps of the grid. When it is not, and a check found a symptom of gradient
  masking, it fails (warning) and names ``--suite autoattack``; without symptoms it is a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from advlab.evaluation.checks.check import Check

RANDOM = ("eval_mode", "deterministic")
NON_DIFFERENTIABLE = ("gradient_agrees_with_finite_differences", "gradients_nonzero")
MASKING = (*NON_DIFFERENTIABLE, "iterative_at_least_single_step", "whitebox_at_least_transfer",
           "large_eps_reaches_zero")
EOT = ("expectation over transformation (EOT): `advlab evaluate --suite autoattack-rand` "
       "(APGD-CE and APGD-DLR with the gradient averaged over 20 draws), or any gradient attack "
       "on advlab.attacks.adaptive.eot(model, n=20)")
BPDA = ("BPDA: put advlab.attacks.adaptive.bpda(g) in place of the non-differentiable "
        "preprocessing g (straight-through: the identity in the backward pass; or the "
        "differentiable approximation you give) and attack again; Square, in `--suite "
        "autoattack`, needs no gradient at all")

SATURATED = ("if the logits saturate the softmax (e.g. defensive distillation), AutoAttack's "
             "scale-invariant DLR losses (APGD-T) and its gradient-free Square see through it: "
             "`advlab evaluate --suite autoattack`")


def advice_checks(earlier: Sequence[Check], summary: Mapping[str, Any]) -> list[Check]:
    """The two advice checks, from the ``earlier`` checks of the run and its summary."""
    failed = {c.name for c in earlier if not c.passed}
    return [_adaptive(failed, summary), _autoattack(failed, summary)]


def _versions(summary: Mapping[str, Any]) -> set[str]:
    """The AutoAttack versions that ran, and ``"eot"`` when an attack averaged over draws."""
    out = set()
    for entry in (summary.get("config") or {}).get("attacks") or []:
        if not isinstance(entry, Mapping):
            continue
        params = entry.get("params") or {}
        if entry.get("name") == "autoattack":
            out.add(str(params.get("version", "standard")))
        if isinstance(params.get("eot_iter"), int) and params["eot_iter"] > 1:
            out.add("eot")
    return out


def _adaptive(failed: set[str], summary: Mapping[str, Any]) -> Check:
    name = "adaptive_attack"
    random = sorted(failed & set(RANDOM))
    frozen = sorted(failed & set(NON_DIFFERENTIABLE))
    ran = _versions(summary)
    if not random and not frozen:
        return Check(name, True, "no randomized or non-differentiable component found ("
                     f"{', '.join(RANDOM + NON_DIFFERENTIABLE)} passed)", "no adaptive attack "
                     "is called for by the model checks (they probe 64 inputs: a component "
                     "that only acts elsewhere goes unseen)", "warning")
    needs, found = [], []
    if random:
        found.append(f"a randomized component ({', '.join(random)} failed)")
        if not ran & {"rand", "eot"}:
            needs.append(f"for the randomness, run {EOT}")
    if "gradient_agrees_with_finite_differences" in frozen:
        found.append("a gradient that is not the slope of the function (gradient_agrees_with_"
                     "finite_differences failed)")
        needs.append(f"for the gradients, run {BPDA}")
    if "gradients_nonzero" in frozen:
        found.append("vanishing input gradients (gradients_nonzero failed)")
        needs.append(f"for the vanishing gradients: {SATURATED}; if a non-differentiable "
                     f"preprocessing step (quantization, rounding, thresholding) is in front, "
                     f"run {BPDA}")
    evidence = "found " + " and ".join(found) + (
        "; EOT ran (AutoAttack rand)" if random and ran & {"rand", "eot"} else "")
    if not needs:
        return Check(name, True, evidence, "the adaptive attack it calls for ran", "warning")
    return Check(name, False, evidence, "; ".join(needs), "warning")


def _autoattack(failed: set[str], summary: Mapping[str, Any]) -> Check:
    name = "worst_case_autoattack"
    worst = [w for w in summary.get("worst_case") or [] if isinstance(w, Mapping)]
    missing = [w for w in worst if "autoattack" not in {
        _name_of(summary, label) for label in w.get("attacks") or []}]
    if worst and not missing:
        return Check(name, True, f"AutoAttack is in the worst case at all {len(worst)} norm × "
                     "eps points", "verified: the worst case is at least AutoAttack's")
    over = sorted({str(a) for w in missing for a in w.get("attacks") or []})
    evidence = (f"the worst case at {len(missing)} norm × eps points is taken over "
                f"{', '.join(over) or 'no attack'} only, without AutoAttack")
    symptoms = sorted(failed & set(MASKING))
    advice = ("run `advlab evaluate --suite autoattack` (APGD-CE, APGD-T, FAB-T and Square, "
              "each on the samples still robust): its worst case is the field's standard")
    if symptoms:
        return Check(name, False, f"{evidence}; symptoms of gradient masking: "
                     f"{', '.join(symptoms)} failed", f"this worst case likely overstates "
                     f"robustness; {advice}", "warning")
    return Check(name, True, evidence, f"a recommendation: {advice}", "warning")


def _name_of(summary: Mapping[str, Any], label: str) -> str | None:
    for entry in (summary.get("config") or {}).get("attacks") or []:
        if isinstance(entry, Mapping) and entry.get("label") == label:
            return entry.get("name")
    return None

"""Sanity checks: is a robustness number believable?

A robust accuracy is an upper bound: it says only what the attacks that ran failed to do. When
they fail for the wrong reason (gradient masking, a model left in training mode, probabilities
where logits belong), it means nothing. These checks look for the symptoms listed by Carlini et
al., "On Evaluating Adversarial Robustness" (arXiv:1902.06705, 2019: its basic sanity tests and
its advice on gradient masking) and checked at run time by AutoAttack (Croce and Hein, ICML
2020, ``autoattack/checks.py``). A :class:`Check` carries its evidence and what a failure likely
means. Failed ``"error"``: do not trust the evaluation as it stands; failed ``"warning"``: look
at it; passed ``"warning"``: inconclusive, or a harmless note.

Model checks (:func:`model_checks`, on a small batch of clean inputs): ``eval_mode`` (the model
and all its submodules); ``deterministic`` (two forward passes with the model as given agree);
``logits_not_probabilities`` (softmax outputs fail; log-probabilities are logits shifted per
row, which no advlab loss sees: a passed warning); ``gradients_nonzero`` (the input gradient of
the cross-entropy is finite, and non-zero for most samples; zero for a few: a warning);
``gradient_agrees_with_finite_differences`` (a warning: autograd's directional derivative along
a random direction matches a central finite difference of the loss). They leave no trace:
``torch.autograd.grad`` only, no global randomness (without a ``generator``, a local one seeded
with 0), each submodule's mode and every buffer restored, ``x`` untouched.

Result checks (:func:`result_checks`, on a summary of schema ``advlab.evaluation/1``, with a
tolerance of one sample, ``1/n + 0.005``): ``accuracy_monotone_in_eps`` (robust accuracy never
rises with eps); ``iterative_at_least_single_step`` (BIM and PGD do at least as well as FGSM);
``large_eps_reaches_zero`` (unbounded minimal-norm attacks succeed on >= 95% of the
clean-correct samples; without them, robust accuracy at the largest eps is <= 5% of clean
accuracy when that eps is large enough to demand it, else inconclusive);
``whitebox_at_least_transfer`` (no transfer attack beats the best white-box attack).
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from advlab.losses import logits_and_grad
from advlab.models.wrappers import eval_mode, looks_like_probabilities

Severity = Literal["error", "warning"]
Model = Callable[[Tensor], Tensor]
Rows = Sequence[Mapping[str, Any]]
Point = tuple[Mapping[str, Any], str, float, float]  # (row, norm, eps, robust accuracy)

SINGLE_STEP = frozenset({"fgsm"})
ITERATIVE = frozenset({"bim", "pgd"})
MIN_SUCCESS = 0.95  # "near zero" robust accuracy: <= 5% of the clean-correct samples survive
FD_RTOL = 0.25  # autograd and the finite difference disagree beyond this relative gap
FD_NOISE = 10  # float rounding noise of the loss, in units of eps x (1 + max |logit|) / h
OP = {True: "<=", False: ">"}
MASKING = ("possible gradient masking (shattered/vanishing gradients): gradient-based attacks "
           "will fail silently; evaluate with a black-box or transfer attack, or BPDA")


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``evidence`` holds the numbers; ``meaning`` says what a
    failure likely means or, for a pass, what was verified."""

    name: str
    passed: bool
    evidence: str
    meaning: str
    severity: Severity = "error"

    def __post_init__(self) -> None:
        if self.severity not in ("error", "warning"):
            raise ValueError(f"Check: severity must be 'error' or 'warning': {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        """A plain JSON-ready dict: name, passed, evidence, meaning, severity."""
        return asdict(self)


# ---------------------------------------------------------------------------------- the model


def model_checks(model: Model, x: Tensor, y: Tensor, *,
                 generator: torch.Generator | None = None) -> list[Check]:
    """The five model checks on clean inputs ``x`` ``(N, *D)`` with labels ``y`` ``(N,)``, in
    the order of the module docstring. ``generator`` draws the finite-difference directions."""
    if x.dim() < 2 or x.shape[0] == 0 or y.shape != (x.shape[0],):
        raise ValueError(f"model_checks: need x of shape (N, *D) with N >= 1 and y of shape "
                         f"(N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    x = x.detach()
    checks = [_eval_mode(model), _deterministic(model, x), _logits_not_probabilities(model, x)]
    logits, grad, failure = _loss_gradient(model, x, y)
    return checks + [_gradients_nonzero(grad, failure),
                     _finite_differences(model, x, y, logits, grad, generator)]


def _loss_gradient(model: Model, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, str]:
    """Logits and input gradient of the cross-entropy, in eval mode. When autograd cannot reach
    the input (a detached or non-differentiable model), the gradient is zero and the reason
    is returned."""
    with eval_mode(model):
        try:
            logits, _, grad = logits_and_grad(model, x, y, loss="ce")
            return logits, grad, ""
        except RuntimeError as err:
            with torch.no_grad():
                return model(x), torch.zeros_like(x), f"; autograd failed: {err}"


@contextmanager
def _buffers_restored(model: Model) -> Iterator[None]:
    """Put every buffer back: a forward pass in training mode updates batch-norm statistics."""
    buffers = dict(model.named_buffers()) if isinstance(model, nn.Module) else {}
    saved = {k: b.clone() for k, b in buffers.items()}
    try:
        yield
    finally:
        with torch.no_grad():
            for k, b in buffers.items():
                b.copy_(saved[k])


def _eval_mode(model: Model) -> Check:
    """Carlini et al. 2019 on randomised defences (a model whose output depends on chance or on
    the batch needs an evaluation built for it); AutoAttack's ``check_randomized``. Modules
    whose behaviour depends on the mode (dropout, batch norm) are listed first."""
    if not isinstance(model, nn.Module):
        return Check("eval_mode", True, "a plain callable, not an nn.Module: no mode to inspect",
                     "not verifiable: keep any dropout or batch norm in it in inference mode",
                     "warning")
    training = sorted((f"{n or 'model'} ({type(m).__name__})" for n, m in model.named_modules()
                       if m.training), key=lambda s: "Dropout" not in s and "Norm" not in s)
    if not training:
        return Check("eval_mode", True, f"all {len(list(model.modules()))} modules are in eval "
                     "mode", "verified: dropout is off and batch norm uses running statistics")
    return Check("eval_mode", False, f"{len(training)} modules in training mode: "
                 f"{', '.join(training[:6])}{' and more' if len(training) > 6 else ''}",
                 "dropout makes outputs random and batch norm uses the batch's statistics, so "
                 "attacks and scores depend on chance and on the batch; call model.eval() (a "
                 "randomised defence needs an expectation-over-transformation evaluation)")


def _deterministic(model: Model, x: Tensor) -> Check:
    """Carlini et al. 2019 on randomised defences; AutoAttack's ``check_randomized``. The model
    is run as given, in whatever mode it is in; NaN logits fail."""
    with torch.no_grad(), _buffers_restored(model):
        first, second = model(x), model(x)
    diff = float((first - second).abs().max())
    tol = 1e-5 * max(1.0, float(first.abs().max()))
    flips = int((first.argmax(1) != second.argmax(1)).sum()) if first.dim() == 2 else 0
    evidence = (f"two forward passes on {x.shape[0]} inputs: max |logit difference| {diff:.3g} "
                f"(tolerance {tol:.3g} = 1e-5 x max(1, max |logit|)); {flips} predictions "
                "changed")
    if torch.equal(first, second) or diff <= tol:
        return Check("deterministic", True, evidence, "verified: same input, same logits")
    return Check("deterministic", False, evidence, "the model is randomised (dropout in "
                 "training mode, random transformations, noise) or broken (NaN): an attack sees "
                 "one random draw, so robust accuracy is overestimated; use model.eval(), or "
                 "evaluate a randomised defence with expectation over transformation (EOT)")


def _logits_not_probabilities(model: Model, x: Tensor) -> Check:
    """AutoAttack's ``check_range_output``; Carlini et al. 2019 on the numerical instability of
    a saturated softmax. Reuses :func:`advlab.models.wrappers.looks_like_probabilities`."""
    name = "logits_not_probabilities"
    with torch.no_grad(), eval_mode(model):
        out = model(x).double().reshape(x.shape[0], -1)
    evidence = (f"{out.shape[0]} rows: values in [{float(out.min()):.3g}, {float(out.max()):.3g}]"
                f", row sums in [{float(out.sum(1).min()):.4g}, {float(out.sum(1).max()):.4g}]")
    if looks_like_probabilities(out, atol=1e-3):
        return Check(name, False, f"{evidence}: every row is >= 0 and sums to 1 within 1e-3",
                     "the model ends in a softmax, but advlab's losses expect logits, and the "
                     "cross-entropy of saturated probabilities has vanishing gradients (gradient "
                     "masking); remove the final softmax")
    if bool((out <= 0).all()) and looks_like_probabilities(out.exp(), atol=1e-3):
        return Check(name, True, f"{evidence}: exp of every row sums to 1 within 1e-3",
                     "log-probabilities (log_softmax) are logits shifted per row, which "
                     "cross-entropy, margin and DLR ignore: attacks are unaffected", "warning")
    return Check(name, True, evidence, "verified: not probabilities or log-probabilities")


def _gradients_nonzero(grad: Tensor, failure: str) -> Check:
    """AutoAttack's ``check_zero_gradients``; Carlini et al. 2019 and Athalye et al. (ICML
    2018) on shattered and vanishing gradients."""
    flat = grad.flatten(1).double()
    finite, norms = torch.isfinite(flat).all(1), flat.abs().sum(1)
    zero = finite & (norms < 1e-10 * flat.shape[1])
    n, n_zero, n_bad = flat.shape[0], int(zero.sum()), int((~finite).sum())
    median = float(norms[finite].median()) if finite.any() else math.nan
    evidence = (f"{n_zero}/{n} samples ({n_zero / n:.0%}) have a zero input gradient of the "
                f"cross-entropy (||g||_1 < 1e-10 x D, D = {flat.shape[1]}); {n_bad} "
                f"non-finite; median ||g||_1 = {median:.3g}{failure}")
    if n_bad or n_zero > n / 2:
        return Check("gradients_nonzero", False, evidence, MASKING)
    if n_zero:
        return Check("gradients_nonzero", False, evidence, "some samples, typically very "
                     "confident ones, have a saturated softmax that cross-entropy attacks cannot "
                     "move; use the margin (C&W) or DLR loss, which do not saturate", "warning")
    return Check("gradients_nonzero", True, evidence,
                 "verified: every sample has a finite, non-zero input gradient")


def _finite_differences(model: Model, x: Tensor, y: Tensor, logits: Tensor, grad: Tensor,
                        generator: torch.Generator) -> Check:
    """Carlini et al. 2019 on non-differentiable components; Athalye et al. 2018 (shattered
    gradients, BPDA): the gradient must be the slope of the function.

    Along one random direction ``v`` per sample (unit L∞), autograd's ``<grad, v>`` meets
    ``(L(x + h v) - L(x - h v)) / 2h``, ``h = 1e-3 max |x|``. Samples where both are below
    float rounding noise say nothing. A clamp of the input inside the model can also disagree
    at the box's edge (a one-sided slope), hence a warning.
    """
    name = "gradient_agrees_with_finite_differences"
    h = 1e-3 * (float(x.abs().max()) or 1.0)
    v = torch.randn(x.shape, generator=generator, device=generator.device,
                    dtype=x.dtype).to(x.device)
    v = v / v.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
    with torch.no_grad(), eval_mode(model):
        up, down = (F.cross_entropy(model(x + s * h * v).double(), y, reduction="none")
                    for s in (1.0, -1.0))
    auto, fd = (grad * v).flatten(1).sum(1).double(), (up - down) / (2 * h)
    noise = FD_NOISE * torch.finfo(logits.dtype).eps * (1 + logits.abs().amax(1).double()) / h
    big = torch.maximum(auto.abs(), fd.abs())
    informative = ~(big <= noise)  # NaN counts as informative, and as a disagreement
    disagree = informative & ~((auto - fd).abs() <= FD_RTOL * big + noise)
    m, k = int(informative.sum()), int(disagree.sum())
    med = [float(t[informative].abs().median()) if m else 0.0 for t in (auto, fd)]
    evidence = (f"one random direction per sample (unit L-inf, h = {h:.3g}): {k}/{m} informative "
                f"samples disagree by more than {FD_RTOL:.0%} (median |autograd| {med[0]:.3g}, "
                f"|finite difference| {med[1]:.3g}); {x.shape[0] - m} with both ~ 0")
    if m == 0:
        return Check(name, True, f"inconclusive: {evidence}", "the loss is flat along every "
                     "direction tried (see gradients_nonzero)", "warning")
    if k > m / 2:
        return Check(name, False, evidence, "possible gradient masking: autograd's gradient is "
                     "not the slope of the function (rounding, quantisation, thresholding, a "
                     "straight-through or detach trick, a custom backward), so gradient attacks "
                     "follow a false signal; evaluate with BPDA, a gradient-free or a transfer "
                     "attack", "warning")
    return Check(name, True, evidence, "verified: autograd's gradient is the slope of the loss",
                 "warning")


# -------------------------------------------------------------------------------- the results


def result_checks(summary: Mapping[str, Any]) -> list[Check]:
    """The four result checks on a summary (schema ``advlab.evaluation/1``), in the order of
    the module docstring. Reads ``results``, ``worst_case``, ``curves``, ``clean_accuracy``,
    ``config.n`` (or ``dataset_card.n``) and ``dataset_card.input_shape``; null and NaN values
    are skipped, and rows with ``"knowledge": "transfer"`` are not white-box results."""
    rows = [r for r in summary.get("results") or [] if isinstance(r, Mapping)]
    tol, tol_text = _tolerance(summary)
    return [_monotone(summary, rows, tol, tol_text), _iterative(rows, tol, tol_text),
            _large_eps(summary, rows), _whitebox_vs_transfer(rows, tol, tol_text)]


def run_all(model: Model, x: Tensor, y: Tensor, summary: Mapping[str, Any], *,
            generator: torch.Generator | None = None) -> list[Check]:
    """:func:`model_checks` followed by :func:`result_checks`."""
    return model_checks(model, x, y, generator=generator) + result_checks(summary)


def _judge(name: str, outcomes: list[tuple[bool, str]], scope: str, meaning: str,
           verified: str) -> Check:
    """Failed (error) when any outcome is not ok; inconclusive (passed, warning) when there
    are none; the first four relevant outcomes are the evidence."""
    items = [text for ok, text in outcomes if not ok] or [text for _, text in outcomes]
    listed = "; ".join(items[:4]) + (f"; and {len(items) - 4} more" if len(items) > 4 else "")
    if not all(ok for ok, _ in outcomes):
        return Check(name, False, f"{listed} ({scope})", meaning)
    if not outcomes:
        return Check(name, True, f"inconclusive: {scope}", "nothing to compare in this run",
                     "warning")
    return Check(name, True, f"{listed} ({scope})", f"verified: {verified}")


def _num(value: Any) -> float | None:
    """A finite float, or None (null, NaN, inf, non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _label(row: Mapping[str, Any]) -> str:
    return str(row.get("attack") or row.get("name") or "?")


def _whitebox(row: Mapping[str, Any]) -> bool:
    return row.get("knowledge") in (None, "whitebox", "white-box", "white_box")


def _points(rows: Rows) -> list[Point]:
    """The rows with a finite eps and robust accuracy."""
    out = [(r, str(r.get("norm")), _num(r.get("eps")), _num(r.get("robust_accuracy")))
           for r in rows]
    return [(r, n, e, a) for r, n, e, a in out if e is not None and a is not None]


def _best(points: Sequence[Point]) -> dict[tuple[str, float], tuple[float, str]]:
    """The lowest robust accuracy, and whose it is, at each (norm, eps)."""
    best: dict[tuple[str, float], tuple[float, str]] = {}
    for r, norm, eps, acc in points:
        if (norm, eps) not in best or acc < best[(norm, eps)][0]:
            best[(norm, eps)] = (acc, _label(r))
    return best


def _tolerance(summary: Mapping[str, Any]) -> tuple[float, str]:
    """One sample's worth of accuracy plus 0.005 (n from the config, else the dataset card)."""
    n = (summary.get("config") or {}).get("n") or (summary.get("dataset_card") or {}).get("n")
    if isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) > 0:
        return 1 / int(n) + 0.005, f"tolerance {1 / int(n) + 0.005:.3g} = 1/{n} + 0.005"
    return 0.01, "tolerance 0.01, n unknown"


def _series(summary: Mapping[str, Any], rows: Rows) -> dict[tuple[str, str], dict[float, float]]:
    """Robust accuracy by eps for each (attack, norm): result rows, the worst case, then the
    curve points not already known."""
    out: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for r, norm, eps, acc in _points(rows):
        out[(_label(r), norm)].setdefault(eps, acc)
    for _, norm, eps, acc in _points(summary.get("worst_case") or []):
        out[("worst case", norm)].setdefault(eps, acc)
    for norm, curve in (summary.get("curves") or {}).items():
        for label, values in (curve.get("series") or {}).items():
            for eps, acc in zip(curve.get("eps") or [], values or [], strict=False):
                if _num(eps) is not None and _num(acc) is not None:
                    out[(str(label), str(norm))].setdefault(float(eps), float(acc))
    return out


def _monotone(summary: Mapping[str, Any], rows: Rows, tol: float, tol_text: str) -> Check:
    """Carlini et al. 2019, basic sanity tests: "verify increasing the perturbation budget
    strictly increases attack success rate", on the success vs. budget curves. Each point meets
    the lowest accuracy at any smaller eps, so a slow upward drift is caught too."""
    outcomes = []
    for (label, norm), points in sorted(_series(summary, rows).items()):
        low: tuple[float, float] | None = None  # (eps, lowest accuracy so far)
        for eps in sorted(points):
            if low is not None:
                ok = points[eps] <= low[1] + tol
                outcomes.append((ok, f"{label} ({norm}): robust accuracy {points[eps]:.3g} at "
                                     f"eps={eps:g} {OP[ok]} {low[1]:.3g} at eps={low[0]:g}"))
            if low is None or points[eps] < low[1]:
                low = (eps, points[eps])
    return _judge("accuracy_monotone_in_eps", outcomes,
                  tol_text if outcomes else "no attack ran at more than one eps",
                  "a larger ball contains the smaller one, so robust accuracy cannot rise with "
                  "eps: the attack misses examples it found at a smaller budget (too few steps, "
                  "a step size that does not scale with eps, unlucky random starts) or the "
                  "gradients are masked", "robust accuracy does not increase with eps")


def _iterative(rows: Rows, tol: float, tol_text: str) -> Check:
    """Carlini et al. 2019, basic sanity tests: "verify iterative attacks perform better than
    single-step attacks". Each white-box BIM or PGD row (by registered ``name``) meets the best
    FGSM row at its norm and eps."""
    points = _points([r for r in rows if _whitebox(r)])
    kind = {id(r): str(r.get("name") or r.get("attack")) for r, *_ in points}
    single = _best([p for p in points if kind[id(p[0])] in SINGLE_STEP])
    outcomes = []
    for r, norm, eps, acc in sorted(points, key=lambda p: (p[1], p[2], _label(p[0]))):
        if kind[id(r)] in ITERATIVE and (norm, eps) in single:
            s_acc, s_label = single[(norm, eps)]
            ok = acc <= s_acc + tol
            outcomes.append((ok, f"{_label(r)} ({norm}, eps={eps:g}): robust accuracy "
                                 f"{acc:.3g} {OP[ok]} {s_label} {s_acc:.3g}"))
    return _judge("iterative_at_least_single_step", outcomes, tol_text if outcomes else
                  "no norm and eps where both FGSM and an iterative attack (BIM, PGD) ran",
                  "possible gradient masking: a single step does better than many, so the loss "
                  "surface is likely obfuscated (or the iterative attack is misconfigured: step "
                  "size, steps)", "iterative attacks do at least as well as a single step")


def _whitebox_vs_transfer(rows: Rows, tol: float, tol_text: str) -> Check:
    """Carlini et al. 2019, sanity tests: black-box and transfer attacks should not outperform
    white-box attacks; when they do, the white-box gradients are obfuscated (Athalye et al.
    2018). Each transfer row meets the best white-box row at its norm and eps."""
    white = _best(_points([r for r in rows if _whitebox(r)]))
    transfer = [r for r in rows if r.get("knowledge") == "transfer"]
    outcomes = []
    for r, norm, eps, acc in _points(transfer):
        if (norm, eps) in white:
            w_acc, w_label = white[(norm, eps)]
            ok = w_acc <= acc + tol
            outcomes.append((ok, f"best white-box {w_label} ({norm}, eps={eps:g}): robust "
                                 f"accuracy {w_acc:.3g} {OP[ok]} transfer {_label(r)} {acc:.3g}"))
    scope = (tol_text if outcomes else "no transfer attack ran" if not transfer else
             f"{len(transfer)} transfer rows, none at a norm and eps where a white-box attack ran")
    return _judge("whitebox_at_least_transfer", outcomes, scope,
                  "possible gradient masking: an attack without the model's gradients beats "
                  "every attack that has them, so the white-box gradients mislead; do not trust "
                  "the white-box numbers, try BPDA or a gradient-free attack",
                  "white-box attacks do at least as well as transfer attacks")


def _large(norm: str, dim: int | None) -> float:
    """The smallest eps whose ball around any x in [0, 1]^D holds the centre of the box, so
    that every input can reach one common point: L∞ 1/2, L2 sqrt(D)/2, L1 D/2, L0 D."""
    d = math.nan if dim is None else dim
    return {"linf": 0.5, "l2": math.sqrt(d) / 2, "l1": d / 2, "l0": d}.get(norm, math.nan)


def _large_eps(summary: Mapping[str, Any], rows: Rows) -> Check:
    """Carlini et al. 2019, basic sanity tests: "with high distortion, model accuracy should
    reach levels of random guessing", and unbounded attacks should reach 100% success. Per
    norm: unbounded minimal-norm rows if any, else the largest eps over the white-box rows and
    the worst case, judged only when large (:func:`_large`; inputs in [0, 1] assumed). Near 0
    is stricter than random guessing: with that much room an attack should break nearly all."""
    shape = (summary.get("dataset_card") or {}).get("input_shape")
    dim = math.prod(int(s) for s in shape) if isinstance(shape, list) and shape else None
    clean = _num(summary.get("clean_accuracy"))
    limit = (1 - MIN_SUCCESS) * (1.0 if clean is None else clean)
    outcomes, notes = [], []
    for norm in sorted({str(r.get("norm")) for r in rows}):
        mine = [r for r in rows if str(r.get("norm")) == norm and _whitebox(r)]
        unbounded = [(r, rate) for r in mine if r.get("minimal_norm") and _num(r.get("eps"))
                     is None and (rate := _num(r.get("success_rate"))) is not None]
        outcomes += [(rate >= MIN_SUCCESS, f"{_label(r)} ({norm}, unbounded minimal-norm): "
                      f"success rate {rate:.3g} {'>=' if rate >= MIN_SUCCESS else '<'} "
                      f"{MIN_SUCCESS}") for r, rate in unbounded]
        bounded = _points(mine)
        if unbounded or not bounded:
            continue
        top, large = max(e for _, _, e, _ in bounded), _large(norm, dim)
        if not top >= large:  # also when large is NaN: no input_shape, or an unknown norm
            notes.append(f"{norm}: largest eps {top:g} is below the large eps " + (
                f"{large:g}" if large == large else "(unknown without input_shape)"))
            continue
        acc = min(a for _, p, e, a in bounded + _points(summary.get("worst_case") or [])
                  if p == norm and e == top)
        ok = acc <= limit + 1e-12
        outcomes.append((ok, f"{norm}: robust accuracy {acc:.3g} at the largest eps {top:g} "
                             f"(large: >= {large:g}) {OP[ok]} {limit:.3g} (5% of clean accuracy)"))
    return _judge("large_eps_reaches_zero", outcomes, "; ".join(notes + [
                  f"needs success >= {MIN_SUCCESS} of unbounded minimal-norm attacks, else "
                  "robust accuracy near 0 at a large eps"]),
                  "where (almost) every input could be moved to another class, the attacks "
                  "still leave many samples unbroken: they are failing (too few steps, wrong "
                  "step size) or the gradients are masked",
                  "with a large budget the attacks break (nearly) every sample")

"""Model sanity checks (see :mod:`advlab.evaluation.checks`): eval mode, determinism, logits,
non-vanishing input gradients that agree with finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from advlab.evaluation.checks.check import MASKING, Check
from advlab.losses import logits_and_grad
from advlab.models.wrappers import eval_mode, looks_like_probabilities

Model = Callable[[Tensor], Tensor]
FD_RTOL = 0.25  # autograd and the finite difference disagree beyond this relative gap
FD_NOISE = 10  # float rounding noise of the loss, in units of eps x (1 + max |logit|) / h


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
    return checks + [_gradients_nonzero(model, x, y, grad, failure),
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


def _gradients_nonzero(model: Model, x: Tensor, y: Tensor, grad: Tensor, failure: str) -> Check:
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
        # A few very confident samples: the softmax saturates in float32 and the cross-entropy
        # gradient underflows. Harmless when the logit margin still has a gradient there.
        idx = zero.nonzero()[:, 0]
        with eval_mode(model):
            _, _, g_margin = logits_and_grad(model, x[idx], y[idx], loss="margin")
        alive = g_margin.flatten(1).abs().sum(1) >= 1e-10 * flat.shape[1]
        if bool(alive.all()):
            return Check("gradients_nonzero", True, evidence + "; the margin loss has a "
                         "non-zero gradient at every one of them", "a few very confident "
                         "samples saturate the softmax (cross-entropy underflows in float32); "
                         "the logit margin still moves them: margin (C&W) and DLR losses see "
                         "them, cross-entropy attacks may not", "warning")
        return Check("gradients_nonzero", False, evidence + f"; {int((~alive).sum())} of them "
                     "also have a zero margin-loss gradient", "some samples have no input "
                     "gradient at all: gradient attacks cannot move them; check for gradient "
                     "masking there", "warning")
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



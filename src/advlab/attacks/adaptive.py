"""Adaptive attacks: make any gradient attack see through randomness, non-differentiable
preprocessing and detectors, by wrapping the *model* it attacks.

* :func:`eot`: Expectation over Transformation (Athalye, Carlini, Wagner, ICML 2018,
  "Obfuscated gradients give a false sense of security", §5.3, arXiv:1802.00420; Athalye,
  Engstrom, Ilyas, Kwok, ICML 2018, "Synthesizing robust adversarial examples",
  arXiv:1707.07397): ``pgd(eot(model, n=20), ...)`` is EOT-PGD. APGD takes ``eot_iter=`` too.
* :func:`bpda`: Backward Pass Differentiable Approximation (Athalye et al. 2018, §4.1).
* :func:`with_detector` and :func:`evade_detector`: attacks on a classifier *and* a detector
  (Carlini and Wagner, AISec 2017, "Adversarial examples are not easily detected", §3,
  arXiv:1705.07263), with :func:`detector_logit` for advlab's fitted detectors.
* :class:`RandomTransform` and :class:`Quantize`: a small randomized defense and a
  non-differentiable one, to try them on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from advlab.attacks.apgd import apgd
from advlab.attacks.common import Model, check_inputs, expand_as_batch
from advlab.models import batching
from advlab.models.wrappers import eval_mode
from advlab.threat import ThreatModel


class EOT(nn.Module):
    """``forward(x)`` is the mean of ``n`` draws of ``model(transform(x))`` (or of a randomized
    ``model(x)``): the gradient of a loss of it is the EOT gradient ``E_t[grad f(t(x))]`` of
    Athalye et al. for the logits ``f``. ``transform(x, generator)`` draws from ``generator``."""

    def __init__(self, model: Model, n: int = 20,
                 transform: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"eot: n must be >= 1, got {n}")
        self.model, self.n, self.transform, self.generator = model, n, transform, generator

    def forward(self, x: Tensor) -> Tensor:
        total = None
        for _ in range(self.n):
            z = x if self.transform is None else self.transform(x, self.generator)
            out = self.model(z)
            total = out if total is None else total + out
        return total / self.n  # type: ignore[operator]


def eot(model: Model, n: int = 20, *,
        transform: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
        generator: torch.Generator | None = None) -> EOT:
    """EOT wrapper of a randomized model (or of ``model`` after a random ``transform``)."""
    return EOT(model, n, transform, generator)


class BPDA(nn.Module):
    """``g(x)`` forwards, and backwards as ``approx`` (the identity by default): the output is
    ``approx(x) + (g(x) - approx(x)).detach()``, exactly ``g(x)`` in value (Athalye et al. 2018,
    §4.1: replace a non-differentiable layer by a differentiable approximation on the backward
    pass only). ``nn.Sequential(bpda(quantize), classifier)`` attacks ``classifier(quantize(x))``
    with the straight-through gradient; its logits are the defended model's own."""

    def __init__(self, preprocess: Callable[[Tensor], Tensor],
                 approx: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.preprocess, self.approx = preprocess, approx

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            g = self.preprocess(x)
        a = x if self.approx is None else self.approx(x)
        return a + (g - a).detach()


def bpda(preprocess: Callable[[Tensor], Tensor],
         approx: Callable[[Tensor], Tensor] | None = None) -> BPDA:
    """BPDA wrapper of a preprocessing ``g`` (see :class:`BPDA`)."""
    return BPDA(preprocess, approx)


class Quantize(nn.Module):
    """Round every input to the grid ``lower + k * step`` (e.g. ``step = 0.25``: 5 grey levels):
    a non-differentiable preprocessing whose gradient is zero almost everywhere."""

    def __init__(self, step: float = 0.25, lower: float = 0.0) -> None:
        super().__init__()
        if not step > 0:
            raise ValueError(f"Quantize: step must be > 0, got {step!r}")
        self.step, self.lower = float(step), float(lower)

    def forward(self, x: Tensor) -> Tensor:
        return torch.round((x - self.lower) / self.step) * self.step + self.lower


class RandomTransform(nn.Module):
    """A randomized input transform: a random shift of up to ``shift`` pixels in each direction
    (images ``(N, C, H, W)``; zero padding), then Gaussian noise of standard deviation
    ``sigma``. Each call draws afresh from ``generator``, independently per sample."""

    def __init__(self, shift: int = 2, sigma: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if shift < 0 or sigma < 0:
            raise ValueError(f"RandomTransform: need shift, sigma >= 0, got {shift}, {sigma}")
        self.shift, self.sigma, self.generator = int(shift), float(sigma), generator

    def forward(self, x: Tensor) -> Tensor:
        return random_transform(x, self.generator, shift=self.shift, sigma=self.sigma)


def random_transform(x: Tensor, generator: torch.Generator | None, *, shift: int = 2,
                     sigma: float = 0.1) -> Tensor:
    """The draw of :class:`RandomTransform` (usable as ``eot(..., transform=)``)."""
    if shift and x.dim() == 4:
        n, _, h, w = x.shape
        s = shift
        dy, dx = (torch.randint(-s, s + 1, (n,), generator=generator, device=x.device)
                  for _ in range(2))
        padded = nn.functional.pad(x, (s, s, s, s))
        rows = (torch.arange(h, device=x.device) + s - dy[:, None])[:, None, :, None]
        cols = (torch.arange(w, device=x.device) + s - dx[:, None])[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if sigma:
        x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x


class DetectorLogit(nn.Module):
    """A fitted :class:`~advlab.defenses.detection.ActivationDetector` (logistic or ReLU MLP
    head) recomputed in torch: ``score(x) - threshold``, positive where the input is flagged,
    differentiable in ``x``."""

    def __init__(self, detector: Any) -> None:
        super().__init__()
        # duck-typed (attacks sit below defenses in the layers): a fitted ActivationDetector
        if not callable(getattr(detector, "differentiable_features", None)) or \
                getattr(detector, "pipeline_", None) is None or \
                getattr(detector, "threshold", None) is None:
            raise ValueError("detector_logit: need a fitted ActivationDetector with a threshold")
        scaler, head = detector.pipeline_[0], detector.pipeline_[-1]
        self.detector = detector
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("mean", as_t(scaler.mean_))
        self.register_buffer("scale", as_t(scaler.scale_))
        if detector.classifier == "logistic":
            weights, biases = [head.coef_.T], [head.intercept_]
        else:
            if head.activation != "relu":
                raise ValueError(f"detector_logit: MLP activation {head.activation!r} unsupported")
            weights, biases = head.coefs_, head.intercepts_
        self.weights = nn.ParameterList(nn.Parameter(as_t(w), requires_grad=False)
                                        for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(as_t(b), requires_grad=False)
                                       for b in biases)
        self.offset = float(detector.threshold)

    def features(self, x: Tensor) -> Tensor:
        return self.detector.differentiable_features(x)  # type: ignore[no-any-return]

    def forward(self, x: Tensor) -> Tensor:
        h = (self.features(x).to(self.mean) - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = h.relu()
        return (h[:, 0] - self.offset).to(x.dtype)


def detector_logit(detector: Any) -> DetectorLogit:
    """The differentiable ``score - threshold`` of a fitted activation or logits detector."""
    return DetectorLogit(detector)


class WithDetector(nn.Module):
    """Carlini and Wagner's combined classifier (AISec 2017, §3): ``K + 1`` logits
    ``G(x) = [Z(x), max_j Z_j(x) + D(x)]``, where ``D > 0`` means flagged. ``argmax G = K + 1``
    exactly when the detector flags ``x``, and otherwise ``argmax G = argmax Z``: an attack
    targeting a class ``t < K`` of ``G`` succeeds iff ``x`` is classified as ``t`` and unflagged.
    (The paper's ``(D + 1) max_j Z_j`` has the same regions when ``max_j Z_j > 0``; the sum has
    them for any logits.)"""

    def __init__(self, model: Model, detector: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.model, self.detector = model, detector

    def forward(self, x: Tensor) -> Tensor:
        z = self.model(x)
        return torch.cat([z, (z.amax(1) + self.detector(x))[:, None]], 1)


def with_detector(model: Model, detector: Callable[[Tensor], Tensor]) -> WithDetector:
    """The ``K + 1``-class model ``G`` of ``model`` and a differentiable detector logit."""
    return WithDetector(model, detector)


def evade_detector(model: Model, detector: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                   threat: ThreatModel, *, n_targets: int = 9, steps: int = 100,
                   restarts: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """A detector-aware attack (Carlini and Wagner, AISec 2017, §3): targeted APGD on the
    margin loss of :class:`WithDetector`'s ``G`` towards each of the ``n_targets`` classes
    ranked highest by the clean logits after ``y``, each only on the samples not yet
    misclassified and unflagged. Returns points inside ``threat``: each sample's first point
    that is misclassified with ``detector(x) <= 0``, else its last attempt."""
    check_inputs("evade_detector", model, x, y, threat, None, needs_finite_eps=True)
    x = x.detach()
    combined = with_detector(model, detector)
    out, done = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    with eval_mode(model), torch.no_grad():
        logits = batching.forward(model, x)
    ranked = logits.scatter(1, y[:, None], -math.inf).argsort(1, descending=True)
    with eval_mode(model):
        for r in range(min(n_targets, logits.shape[1] - 1)):
            idx = (~done).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            t = ranked[idx, r]
            adv = apgd(combined, x[idx], y[idx], threat, target=t, loss="margin", steps=steps,
                       restarts=restarts, generator=generator)
            with torch.no_grad():
                ok = combined(adv).argmax(1) == t
            out[idx] = torch.where(expand_as_batch(ok | (r == 0), adv), adv, out[idx])
            done[idx] = ok
    return out.detach()
